"""What the payment gateway told us about an order that Orders Desk did not do itself:
its disputes, the refunds made outside Orders Desk, whether it needs a person's
attention; and the inbox of Stripe events, for the Stripe events page and the CLI.

Read services authorize VIEW; `disputed_orders` is the one query every path (the
order page, the list's badge, Fulfil's confirmation) uses to know an order is disputed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update

from .clock import utcnow
from .db import Database
from .dispute_queries import DisputeView, dispute_view, disputed_orders
from .errors import ValidationError
from .lifecycle import resolve_order_id
from .queries import iso
from .schema import disputes, orders, refunds, stripe_events
from .staff import Actor, Permission, authorize
from .timeline import EventKind, event_row, write_events
from .validation import whole_number

MAX_LISTED_EVENTS = 1000


@dataclasses.dataclass(frozen=True)
class ExternalRefundView:
    gateway_refund_id: str | None
    amount: int
    currency: str
    status: str
    created_at: str | None


@dataclasses.dataclass(frozen=True)
class PaymentEvents:
    """The order's gateway-side facts, for the order page."""

    number: str
    needs_attention: bool
    attention_reason: str | None
    disputes: list[DisputeView]
    external_refunds: list[ExternalRefundView]

    @property
    def disputed(self) -> bool:
        return any(d.marks_disputed for d in self.disputes)


def read_payment_events(db: Database, number: str, *, actor: Actor) -> PaymentEvents:
    """Disputes, external refunds and the attention flag of order `number`."""
    authorize(db, actor, Permission.VIEW)
    order_id = resolve_order_id(db, number)
    with db.read() as conn:
        order = conn.execute(
            select(orders.c.number, orders.c.needs_attention, orders.c.attention_reason).where(
                orders.c.id == order_id
            )
        ).one()
        dispute_rows = conn.execute(
            select(disputes).where(disputes.c.order_id == order_id).order_by(disputes.c.id)
        ).all()
        refund_rows = conn.execute(
            select(refunds)
            .where(refunds.c.order_id == order_id, refunds.c.origin == "external")
            .order_by(refunds.c.id)
        ).all()
    return PaymentEvents(
        order.number,
        bool(order.needs_attention),
        order.attention_reason,
        [dispute_view(r) for r in dispute_rows],
        [
            ExternalRefundView(r.gateway_refund_id, r.amount, r.currency, r.status, iso(r.created_at))
            for r in refund_rows
        ],
    )


def disputed_numbers(db: Database, order_ids: Iterable[int], *, actor: Actor) -> set[int]:
    """Which of `order_ids` are disputed (the orders list's badge)."""
    authorize(db, actor, Permission.VIEW)
    with db.read() as conn:
        return set(disputed_orders(conn, order_ids))


def clear_attention(db: Database, actor: Actor, number: str, *, note: str = "") -> None:
    """A person has looked: the order no longer needs attention (a timeline entry says who)."""
    actor = authorize(db, actor, Permission.NOTE)
    order_id = resolve_order_id(db, number)
    with db.write() as conn:
        now = utcnow()
        status = conn.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.needs_attention.is_(True))
            .values(needs_attention=False, attention_reason=None, updated_at=now)
            .returning(orders.c.status)
        ).scalar()
        if status is None:
            raise ValidationError("This order is not marked as needing attention.")
        text = "Marked as reviewed (no longer needs attention)" + (
            f": {note.strip()[:1000]}" if note.strip() else ""
        )
        write_events(
            conn, [event_row(order_id, actor.label, EventKind.ATTENTION, status, None, text, at=now)]
        )


# -- the inbox --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StripeEventView:
    event_id: str
    type: str
    created: str | None
    object_id: str | None
    source: str
    received_at: str | None
    processed_at: str | None
    outcome: str | None
    order_number: str | None
    detail: str | None
    error: str | None

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


def list_stripe_events(
    db: Database, *, actor: Actor, unmatched: bool = False, limit: int = 200
) -> list[StripeEventView]:
    """The newest events of the inbox (only those matching no order with `unmatched`)."""
    authorize(db, actor, Permission.VIEW)
    limit = whole_number(limit, "Limit", minimum=1, maximum=MAX_LISTED_EVENTS)
    query = (
        select(stripe_events, orders.c.number)
        .outerjoin(orders, orders.c.id == stripe_events.c.order_id)
        .order_by(stripe_events.c.received_at.desc(), stripe_events.c.id.desc())
        .limit(limit)
    )
    if unmatched:
        query = query.where(stripe_events.c.outcome == "unmatched")
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [
        StripeEventView(
            r.event_id,
            r.type,
            iso(dt.datetime.fromtimestamp(r.event_created, dt.UTC).replace(tzinfo=None)),
            r.object_id,
            r.source,
            iso(r.received_at),
            iso(r.processed_at),
            r.outcome or "pending",
            r.number,
            r.detail,
            r.error,
        )
        for r in rows
    ]


__all__ = [
    "DisputeView",
    "disputed_orders",
    "ExternalRefundView",
    "PaymentEvents",
    "StripeEventView",
    "read_payment_events",
    "disputed_numbers",
    "clear_attention",
    "list_stripe_events",
]
