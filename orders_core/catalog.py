"""Products and SKUs: what can be bought, at what price, and whether it ships."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from .db import Database
from .schema import products, skus


@dataclasses.dataclass(frozen=True)
class SkuListing:
    id: int
    code: str
    name: str
    product: str
    product_id: int
    shippable: bool
    unit_amount: int
    currency: str
    active: bool  # false when the SKU or its product is retired

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "product": self.product,
            "shippable": self.shippable,
            "unit_amount": self.unit_amount,
            "currency": self.currency,
            "active": self.active,
        }


def _listing_query():
    return select(
        skus.c.id,
        skus.c.code,
        skus.c.name,
        products.c.name.label("product"),
        products.c.id.label("product_id"),
        products.c.shippable,
        skus.c.unit_amount,
        skus.c.currency,
        (skus.c.active & products.c.active).label("active"),
    ).join(products, products.c.id == skus.c.product_id)


def list_skus(db: Database, *, active_only: bool = False) -> list[SkuListing]:
    query = _listing_query().order_by(products.c.name, skus.c.code)
    if active_only:
        query = query.where(skus.c.active, products.c.active)
    with db.read() as conn:
        return [_listing(r) for r in conn.execute(query)]


def skus_by_code(conn, codes: list[str]) -> dict[str, SkuListing]:
    rows = conn.execute(_listing_query().where(skus.c.code.in_(codes))).all()
    return {r.code: _listing(r) for r in rows}


def _listing(row) -> SkuListing:
    return SkuListing(
        row.id,
        row.code,
        row.name,
        row.product,
        row.product_id,
        bool(row.shippable),
        row.unit_amount,
        row.currency,
        bool(row.active),
    )
