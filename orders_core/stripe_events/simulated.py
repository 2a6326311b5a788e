"""Offline demos of money moving outside Orders Desk: the simulated gateway is told
to refund a charge "in the Dashboard" or to open or close a dispute, and the matching
Stripe event (same shape as Stripe's) is delivered into the inbox through
`receive_event`, the function the webhook route calls after verifying a signature.
So every webhook flow can be tried without Stripe (`python -m orders_core gateway ...`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time
from typing import Any

from sqlalchemy import select

from ..db import Database
from ..errors import NotFound, OrdersError, ValidationError
from ..lifecycle import resolve_order_id
from ..order_numbers import format_order_number
from ..payments.simulated import SimulatedDispute, SimulatedGateway
from ..schema import payments
from ..status import PaymentStatus
from .inbox import Received, receive_event

DISPUTE_REASONS = (
    "fraudulent",
    "product_not_received",
    "product_unacceptable",
    "duplicate",
    "subscription_canceled",
    "credit_not_processed",
    "unrecognized",
    "general",
)
CLOSING_STATUSES = ("won", "lost")


@dataclasses.dataclass(frozen=True)
class Delivered:
    """What the simulated gateway did and the event it delivered."""

    order_number: str
    object_id: str
    event_type: str
    received: Received


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_sim_" + secrets.token_hex(12),
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def _epoch(when: dt.datetime | None) -> int | None:
    return None if when is None else int(when.replace(tzinfo=dt.UTC).timestamp())


def _simulated_payment(db: Database, number: str) -> tuple[str, str]:
    """(order number, PaymentIntent id) of the order's succeeded simulated charge."""
    order_id = resolve_order_id(db, number)
    with db.read() as conn:
        row = conn.execute(
            select(payments.c.gateway, payments.c.gateway_payment_id)
            .where(payments.c.order_id == order_id, payments.c.status == PaymentStatus.SUCCEEDED.value)
            .order_by(payments.c.id.desc())
            .limit(1)
        ).first()
    formatted = format_order_number(order_id)
    if row is None:
        raise OrdersError(f"Order {formatted} has no successful payment.")
    if row.gateway != SimulatedGateway.name:
        raise OrdersError(
            f"Order {formatted} was paid through {row.gateway}; "
            "only the simulated gateway takes these commands."
        )
    return formatted, row.gateway_payment_id


def refund_outside(db: Database, number: str, *, amount: int | None = None) -> Delivered:
    """Refund the order's charge at the simulated gateway, as if in the Stripe Dashboard
    (all that is left of it unless `amount`), and deliver refund.created."""
    formatted, payment_intent = _simulated_payment(db, number)
    refund = SimulatedGateway(db).refund_outside(payment_intent, amount=amount)
    obj = {
        "id": refund.refund_id,
        "object": "refund",
        "amount": refund.amount,
        "currency": refund.currency,
        "payment_intent": payment_intent,
        "charge": payment_intent,
        "status": refund.status,
        "metadata": {},
        "created": int(time.time()),
    }
    event = _event("refund.created", obj)
    return Delivered(formatted, refund.refund_id, event["type"], receive_event(db, event, source="simulated"))


def _dispute_object(dispute: SimulatedDispute) -> dict[str, Any]:
    return {
        "id": dispute.dispute_id,
        "object": "dispute",
        "amount": dispute.amount,
        "currency": dispute.currency,
        "payment_intent": dispute.payment_id,
        "charge": dispute.payment_id,
        "reason": dispute.reason,
        "status": dispute.status,
        "evidence_details": {"due_by": _epoch(dispute.evidence_due_by)},
        "created": int(time.time()),
    }


def open_dispute(
    db: Database, number: str, *, reason: str = "fraudulent", amount: int | None = None
) -> Delivered:
    """The customer's bank disputes the order's charge: charge.dispute.created."""
    if reason not in DISPUTE_REASONS:
        raise ValidationError(
            f"Unknown dispute reason {reason[:40]!r}; use one of {', '.join(DISPUTE_REASONS)}."
        )
    formatted, payment_intent = _simulated_payment(db, number)
    dispute = SimulatedGateway(db).open_dispute(payment_intent, reason=reason, amount=amount)
    event = _event("charge.dispute.created", _dispute_object(dispute))
    return Delivered(
        formatted, dispute.dispute_id, event["type"], receive_event(db, event, source="simulated")
    )


def close_dispute(db: Database, number: str, *, status: str = "won") -> Delivered:
    """The order's newest open dispute closes as `status` (won or lost): charge.dispute.closed."""
    if status not in CLOSING_STATUSES:
        raise ValidationError(f"A dispute closes as won or lost, not {status[:40]!r}.")
    formatted, payment_intent = _simulated_payment(db, number)
    gateway = SimulatedGateway(db)
    open_ones = [d for d in gateway.list_disputes(payment_intent) if d.status not in CLOSING_STATUSES]
    if not open_ones:
        raise NotFound(f"Order {formatted} has no open dispute at the simulated gateway.")
    dispute = gateway.set_dispute_status(open_ones[-1].dispute_id, status)
    event = _event("charge.dispute.closed", _dispute_object(dispute))
    return Delivered(
        formatted, dispute.dispute_id, event["type"], receive_event(db, event, source="simulated")
    )


__all__ = [
    "refund_outside",
    "open_dispute",
    "close_dispute",
    "Delivered",
    "DISPUTE_REASONS",
    "CLOSING_STATUSES",
]
