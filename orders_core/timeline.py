"""The order timeline: one row per thing that happened to an order (order_events),
and the wording of the notes the services write there.

Checkout, lifecycle and the demo seed all write the timeline, so the kinds of event
and the notes ("Charged $5.00 via simulated (pi_…)", "Refunded $5.00 (re_…)") are
built here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import insert

from .schema import order_events
from .status import Action


class EventKind(str, enum.Enum):
    """What an order_events row records (its `action` column)."""

    CREATE = "create"
    PAY = "pay"
    PAYMENT_RECEIVED = "payment_received"  # money arrived after the order had moved on
    PAYMENT_FAILED = "payment_failed"
    FULFILL = "fulfill"
    CANCEL = "cancel"
    RETURN = "return"
    NOTE = "note"
    REFUND = "refund"  # money went back after the order had moved on
    REFUND_FAILED = "refund_failed"
    EXTERNAL_REFUND = "external_refund"  # money went back at the gateway without us
    DISPUTE = "dispute"  # a chargeback opened, moved on or closed at the gateway
    ATTENTION = "attention"  # the order was flagged for a person to look, or cleared

    @classmethod
    def of_move(cls, action: Action) -> EventKind:
        """The event a status move writes: the move's own name."""
        return cls(Action(action).value)


def charged_note(amount_text: str, gateway_name: str, gateway_payment_id: str) -> str:
    """The note of a successful charge; `amount_text` is the formatted money."""
    return f"Charged {amount_text} via {gateway_name} ({gateway_payment_id})"


def refunded_note(amount_text: str, gateway_refund_id: str, reason: str = "") -> str:
    """The note of a refund that went through, after the staff member's reason if any."""
    note = f"Refunded {amount_text} ({gateway_refund_id})"
    return f"{reason}\n{note}" if reason else note


def event_row(
    order_id: int,
    actor: str,
    kind: EventKind | Action | str,
    from_status,
    to_status,
    note: str = "",
    *,
    at: dt.datetime,
    job_id: int | None = None,
) -> dict:
    return {
        "order_id": order_id,
        "at": at,
        "actor": actor,
        "action": EventKind(_value(kind)).value,
        "from_status": _value(from_status),
        "to_status": _value(to_status),
        "note": note or "",
        "job_id": job_id,
    }


def write_events(conn, rows: list[dict]) -> None:
    if rows:
        conn.execute(insert(order_events), rows)


def _value(member):
    return member.value if isinstance(member, enum.Enum) else member


__all__ = ["EventKind", "charged_note", "refunded_note", "event_row", "write_events"]
