"""Which orders are disputed: the one query behind the order page's badge, the orders
list's Disputed filter and badge, and Fulfil's confirmation (lifecycle). Imports only
storage and rules, so lifecycle and queries can both use it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from .chunking import ID_LIST_LIMIT, chunks
from .dispute_rules import SETTLED_IN_OUR_FAVOUR, is_closed, status_label
from .money import format_money
from .schema import disputes, orders


@dataclasses.dataclass(frozen=True)
class DisputeView:
    gateway_dispute_id: str
    reason: str
    amount: int
    currency: str
    status: str
    evidence_due_by: dt.datetime | None
    opened_at: dt.datetime | None
    closed_at: dt.datetime | None

    @property
    def status_label(self) -> str:
        return status_label(self.status)

    @property
    def marks_disputed(self) -> bool:
        return self.status not in SETTLED_IN_OUR_FAVOUR

    @property
    def closed(self) -> bool:
        return is_closed(self.status)

    def describe(self) -> str:
        """ "dp_… (fraudulent, $19.99, Needs response)": what a refusal names."""
        money = format_money(self.amount, self.currency)
        return f"{self.gateway_dispute_id} ({self.reason}, {money}, {self.status_label})"


def dispute_view(row: Any) -> DisputeView:
    return DisputeView(
        row.gateway_dispute_id,
        row.reason,
        row.amount,
        row.currency,
        row.status,
        row.evidence_due_by,
        row.opened_at,
        row.closed_at,
    )


def disputed_condition() -> ColumnElement[bool]:
    """orders.id IN (orders with a dispute that is open or was lost): the Disputed filter."""
    return orders.c.id.in_(select(disputes.c.order_id).where(disputes.c.status.not_in(SETTLED_IN_OUR_FAVOUR)))


def disputed_orders(conn: Connection, order_ids: Iterable[int]) -> dict[int, DisputeView]:
    """Of `order_ids`, the disputed ones, each with its newest dispute that marks it."""
    found: dict[int, DisputeView] = {}
    for chunk in chunks(list(order_ids), ID_LIST_LIMIT):
        for row in conn.execute(
            select(disputes)
            .where(disputes.c.order_id.in_(chunk), disputes.c.status.not_in(SETTLED_IN_OUR_FAVOUR))
            .order_by(disputes.c.id)
        ):
            found[row.order_id] = dispute_view(row)
    return found


__all__ = ["DisputeView", "dispute_view", "disputed_condition", "disputed_orders"]
