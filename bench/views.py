"""The 50 varied views of the orders page that #1 times: filters as staff use them
(status tabs, date ranges, amounts, SKUs, searches by number, email and name, and
combinations), sorts and pages. Built from the data itself (its dates, customers,
SKUs and order numbers), so they make sense at any size."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select

from orders_core.queries import OrderFilters
from orders_core.schema import orders, skus


@dataclasses.dataclass(frozen=True)
class View:
    name: str
    filters: OrderFilters
    sort: str = "created_at"
    descending: bool = True
    page: int = 1


def _dates(conn):
    low, high = conn.execute(select(func.min(orders.c.created_at), func.max(orders.c.created_at))).one()
    if isinstance(low, str):  # pragma: no cover - SQLAlchemy parses them on both backends
        low, high = dt.datetime.fromisoformat(low), dt.datetime.fromisoformat(high)
    return low.date(), high.date()


def build_views(db) -> list[View]:
    with db.read() as conn:
        first, last = _dates(conn)
        codes = list(conn.execute(select(skus.c.code).order_by(skus.c.id)).scalars())
        total_orders = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        sample = conn.execute(
            select(orders.c.number, orders.c.customer_email, orders.c.customer_name)
            .order_by(orders.c.id)
            .limit(1)
            .offset(max(0, total_orders // 3))
        ).one()
    number, email, name = sample
    local = email.split("@", 1)[0]
    surname = name.split()[-1]
    days = (last - first).days or 1

    def ago(n: int) -> dt.date:
        return max(first, last - dt.timedelta(days=n))

    mid = first + dt.timedelta(days=days // 2)
    F = OrderFilters.parse

    def T(*, min_total: int | None = None, max_total: int | None = None, **rest) -> OrderFilters:
        """Totals in minor units of any currency, as these views measured them before a
        total took a currency (kept so that the runs compare; a page's total is narrower)."""
        return dataclasses.replace(F(**rest), min_total=min_total, max_total=max_total)

    sku_a, sku_b, sku_c = codes[0], codes[len(codes) // 2], codes[-1]
    views = [
        # the status tabs, unfiltered, newest first (what the page opens on)
        View("all", F()),
        View("tab created", F(status="created")),
        View("tab paid", F(status="paid")),
        View("tab fulfilled", F(status="fulfilled")),
        View("tab canceled", F(status="canceled")),
        View("tab returned", F(status="returned")),
        View("all, page 2", F(), page=2),
        View("all, page 40", F(), page=40),
        # sorts
        View("all by total, largest first", F(), sort="total_amount"),
        View("all by total, smallest first", F(), sort="total_amount", descending=False),
        View("all by number, oldest first", F(), sort="number", descending=False),
        View("paid by total", F(status="paid"), sort="total_amount"),
        View("all by status", F(), sort="status", descending=False),
        # date ranges
        View("today", F(created_from=last, created_to=last)),
        View("last 7 days", F(created_from=ago(7))),
        View("last 30 days", F(created_from=ago(30))),
        View("last 90 days", F(created_from=ago(90))),
        View("paid, last 7 days", F(status="paid", created_from=ago(7))),
        View("fulfilled, last 30 days", F(status="fulfilled", created_from=ago(30))),
        View("one day mid-range", F(created_from=mid, created_to=mid)),
        View("one month mid-range", F(created_from=mid, created_to=mid + dt.timedelta(days=30))),
        View("created, older than 60 days", F(status="created", created_to=ago(60))),
        View("canceled, last 90 days, page 3", F(status="canceled", created_from=ago(90)), page=3),
        # amounts (minor units)
        View("total ≥ 50.00", T(min_total=5000)),
        View("total ≤ 15.00", T(max_total=1500)),
        View("total 20.00–30.00", T(min_total=2000, max_total=3000)),
        View("paid, total ≥ 100.00", T(status="paid", min_total=10000)),
        View("last 30 days, total ≥ 50.00", T(created_from=ago(30), min_total=5000)),
        View("total ≥ 200.00 by total", T(min_total=20000), sort="total_amount"),
        # SKUs
        View(f"SKU {sku_a}", F(sku=sku_a)),
        View(f"SKU {sku_b}", F(sku=sku_b)),
        View(f"SKU {sku_c}, paid", F(sku=sku_c, status="paid")),
        View(f"SKU {sku_a}, last 7 days", F(sku=sku_a, created_from=ago(7))),
        View(f"SKU {sku_b}, last 30 days, fulfilled", F(sku=sku_b, created_from=ago(30), status="fulfilled")),
        View("SKU not sold", F(sku="NO-SUCH-SKU")),
        # searches: order number, email, name (substring, any case)
        View("search: an order number", F(search=number)),
        View("search: a whole email", F(search=email)),
        View("search: part of an email", F(search=local[:5])),
        View("search: a surname", F(search=surname)),
        View("search: a surname, in capitals", F(search=surname.upper())),
        View("search: a domain", F(search="example.org")),
        View("search: no match", F(search="zzqxj")),
        View("search: a surname, paid", F(search=surname, status="paid")),
        View("search: a surname, last 30 days", F(search=surname, created_from=ago(30))),
        # combinations
        View("paid, last 30 days, total ≥ 20.00", T(status="paid", created_from=ago(30), min_total=2000)),
        View(f"fulfilled, SKU {sku_c}, total ≤ 100.00", T(status="fulfilled", sku=sku_c, max_total=10000)),
        View(
            "returned, one month mid-range, by total",
            F(status="returned", created_from=mid, created_to=mid + dt.timedelta(days=30)),
            sort="total_amount",
        ),
        View(
            "last 90 days, total 10.00–40.00, page 5",
            T(created_from=ago(90), min_total=1000, max_total=4000),
            page=5,
        ),
        View("created, last 7 days, by total", F(status="created", created_from=ago(7)), sort="total_amount"),
        View("all, page 2,000", F(), page=2000),
    ]
    assert len(views) == 50, len(views)
    return views
