"""What each Stripe event does to our books (issue 12, section 2). Each handler gets
the event as Stripe sent it and returns an Effect: its outcome, the order it matched
(None: a payment we do not know) and a line saying what happened.

Events are matched to orders through the payment they are about (payments.
gateway_payment_id, the PaymentIntent id); an older event about an object never
overwrites what a newer one did (inbox.is_stale / remember_version)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import Connection, case, func, insert, select, update

from ..charging import recover_pending_payments
from ..clock import utcnow
from ..db import Database
from ..dispute_rules import is_closed, status_label
from ..money import format_money
from ..payments import GatewayDirectory
from ..schema import disputes, orders, payments, refunds
from ..status import PaymentStatus
from ..timeline import EventKind, event_row, write_events
from .inbox import Outcome, is_stale, remember_version

Event = dict[str, Any]  # a Stripe event (or object) as Stripe sent it, parsed JSON
ACTOR = "stripe (webhook)"  # who the timeline says acted
EXTERNAL = "external"
# External refunds in these states count in the order's refunded amount (Stripe counts
# a pending refund in the charge's amount_refunded too).
COUNTED_REFUND_STATUSES = ("succeeded", "pending")


@dataclasses.dataclass(frozen=True)
class Effect:
    outcome: str
    order_id: int | None = None
    detail: str = ""
    retry_in: float | None = None  # DEFERRED: try again in this many seconds


def _field(obj: Any, name: str, default: Any = None) -> Any:
    value = obj.get(name) if isinstance(obj, dict) else None
    return default if value is None else value


def _id_of(value: Any) -> str | None:
    """An id field, or the id of an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _when(epoch: Any) -> dt.datetime | None:
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def _payment_for(conn: Connection, payment_intent_id: str | None) -> Any:
    """Our newest charge attempt with this gateway payment id, with its order."""
    if not payment_intent_id:
        return None
    return conn.execute(
        select(
            payments.c.id,
            payments.c.order_id,
            payments.c.gateway,
            payments.c.status,
            payments.c.locked_until,
            payments.c.amount,
            orders.c.number,
            orders.c.status.label("order_status"),
            orders.c.total_amount,
            orders.c.refunded_amount,
            orders.c.currency.label("order_currency"),
        )
        .join(orders, orders.c.id == payments.c.order_id)
        .where(payments.c.gateway_payment_id == payment_intent_id)
        .order_by(payments.c.id.desc())
        .limit(1)
    ).first()


def _flag_attention(conn: Connection, order_id: int, reason: str, now: dt.datetime) -> None:
    conn.execute(
        update(orders)
        .where(orders.c.id == order_id)
        .values(needs_attention=True, attention_reason=reason[:2000], updated_at=now)
    )


# -- payment_intent.* -------------------------------------------------------------------------
def payment_succeeded(db: Database, gateways: GatewayDirectory, event: Event) -> Effect:
    """A charge whose confirm's answer we lost: settle it the way recovery does (asking
    the gateway), once. An order we hold as Paid already: nothing."""
    intent = event["data"]["object"]
    with db.read() as conn:
        payment = _payment_for(conn, _id_of(intent.get("id")))
        if payment is None:
            return Effect(Outcome.UNMATCHED, None, f"No payment of ours is {intent.get('id')}.")
        if is_stale(conn, intent["id"], event["created"]):
            return Effect(Outcome.STALE, payment.order_id, "A newer event about this payment was applied.")
    if payment.status == PaymentStatus.SUCCEEDED.value:
        return Effect(Outcome.NO_CHANGE, payment.order_id, f"Order {payment.number} is already paid.")
    if payment.status == PaymentStatus.FAILED.value:
        with db.write() as conn:
            now = utcnow()
            reason = (
                f"Stripe reports payment {intent['id']} succeeded, but Orders Desk recorded it "
                "as failed: check the payment in Stripe and refund or re-take it."
            )
            _flag_attention(conn, payment.order_id, reason, now)
            write_events(
                conn,
                [
                    event_row(
                        payment.order_id,
                        ACTOR,
                        EventKind.ATTENTION,
                        payment.order_status,
                        None,
                        reason,
                        at=now,
                    )
                ],
            )
            remember_version(conn, intent["id"], event["created"], event["id"])
        return Effect(Outcome.APPLIED, payment.order_id, reason)
    # Pending: the answer of its confirm was lost (or it is under way right now).
    if payment.locked_until is not None and payment.locked_until > utcnow():
        seconds = (payment.locked_until - utcnow()).total_seconds() + 1
        return Effect(
            Outcome.DEFERRED, payment.order_id, "A charge of this order is in flight.", retry_in=seconds
        )
    paid = recover_pending_payments(db, gateways, [payment.order_id])  # type: ignore[arg-type]
    if payment.order_id not in paid:
        with db.read() as conn:
            still = conn.execute(select(payments.c.status).where(payments.c.id == payment.id)).scalar_one()
        if still == PaymentStatus.PENDING.value:  # another recovery holds it, or the gateway is down
            return Effect(
                Outcome.DEFERRED, payment.order_id, "The charge is still being settled.", retry_in=5.0
            )
    with db.write() as conn:
        remember_version(conn, intent["id"], event["created"], event["id"])
    if payment.order_id in paid:
        return Effect(
            Outcome.APPLIED, payment.order_id, f"Order {payment.number} is paid (settled by recovery)."
        )
    return Effect(
        Outcome.NO_CHANGE,
        payment.order_id,
        "Recovery asked the gateway, which does not hold the payment as succeeded.",
    )


def payment_failed(conn: Connection, event: Event) -> Effect:
    """A declined charge: a line in the order's timeline with the decline code."""
    intent = event["data"]["object"]
    payment = _payment_for(conn, _id_of(intent.get("id")))
    if payment is None:
        return Effect(Outcome.UNMATCHED, None, f"No payment of ours is {intent.get('id')}.")
    if is_stale(conn, intent["id"], event["created"]):
        return Effect(Outcome.STALE, payment.order_id, "A newer event about this payment was applied.")
    error = _field(intent, "last_payment_error", {})
    code = _field(error, "decline_code") or _field(error, "code") or "unknown"
    message = _field(error, "message", "")
    note = f"Stripe reports payment {intent['id']} failed: decline code {code}" + (
        f" — {message}" if message else ""
    )
    now = utcnow()
    write_events(
        conn,
        [
            event_row(
                payment.order_id,
                ACTOR,
                EventKind.PAYMENT_FAILED,
                payment.order_status,
                None,
                note[:4000],
                at=now,
            )
        ],
    )
    remember_version(conn, intent["id"], event["created"], event["id"])
    return Effect(Outcome.APPLIED, payment.order_id, note)


# -- refunds ----------------------------------------------------------------------------------
def _stripe_refund_status(status: Any) -> str:
    if status == "requires_action":
        return "pending"
    return status if status in ("pending", "succeeded", "failed", "canceled") else "pending"


def _counted(amount: int, status: str) -> int:
    return amount if status in COUNTED_REFUND_STATUSES else 0


def apply_refund(conn: Connection, refund: Event, event: Event) -> Effect:
    """One refund at the gateway: ours reported back changes nothing; one made outside
    Orders Desk is recorded (refunds.origin = 'external'), counted in the order's
    refunded amount, written in its timeline, and the order flagged for attention."""
    refund_id = _id_of(refund.get("id"))
    if refund_id is None:
        return Effect(Outcome.IGNORED, None, "A refund without an id.")
    metadata = _field(refund, "metadata", {})
    key = _field(metadata, "refund_key") if isinstance(metadata, dict) else None
    ours = conn.execute(
        select(refunds.c.id, refunds.c.order_id, refunds.c.origin).where(
            (refunds.c.gateway_refund_id == refund_id)
            | ((refunds.c.idempotency_key == key) if key else False)
        )
    ).first()
    if ours is not None and ours.origin != EXTERNAL:
        return Effect(Outcome.NO_CHANGE, ours.order_id, f"Refund {refund_id} is Orders Desk's own.")
    payment = _payment_for(conn, _id_of(refund.get("payment_intent")))
    if payment is None:
        return Effect(Outcome.UNMATCHED, None, f"Refund {refund_id} is for a payment we do not know.")
    if is_stale(conn, refund_id, event["created"]):
        return Effect(Outcome.STALE, payment.order_id, f"A newer event about refund {refund_id} was applied.")
    amount = _field(refund, "amount", 0)
    currency = str(_field(refund, "currency", payment.order_currency)).lower()
    status = _stripe_refund_status(refund.get("status"))
    now = utcnow()
    money = format_money(int(amount), currency)
    if ours is None:
        conn.execute(
            insert(refunds).values(
                order_id=payment.order_id,
                payment_id=payment.id,
                gateway=payment.gateway,
                gateway_refund_id=refund_id,
                amount=int(amount),
                currency=currency,
                status=status,
                idempotency_key=f"external:{refund_id}",
                action=EXTERNAL,
                actor=ACTOR,
                reason="Refunded outside Orders Desk (at the payment gateway)",
                created_at=_when(refund.get("created")) or now,
                updated_at=now,
                origin=EXTERNAL,
            )
        )
        delta = _counted(int(amount), status)
        note = f"Refund of {money} made outside Orders Desk ({refund_id}), {status}"
    else:
        before = conn.execute(select(refunds.c.amount, refunds.c.status).where(refunds.c.id == ours.id)).one()
        if before.amount == amount and before.status == status:
            remember_version(conn, refund_id, event["created"], event["id"])
            return Effect(Outcome.NO_CHANGE, payment.order_id, f"Refund {refund_id} is recorded as it is.")
        conn.execute(
            update(refunds)
            .where(refunds.c.id == ours.id)
            .values(amount=int(amount), status=status, updated_at=now)
        )
        delta = _counted(int(amount), status) - _counted(before.amount, before.status)
        note = f"Refund {refund_id} made outside Orders Desk is now {status} ({money})"
    new_total = orders.c.refunded_amount + delta
    refunded = conn.execute(
        update(orders)
        .where(orders.c.id == payment.order_id)
        .values(refunded_amount=case((new_total < 0, 0), else_=new_total), updated_at=now)
        .returning(orders.c.refunded_amount)
    ).scalar_one()
    currency = payment.order_currency
    total = format_money(payment.total_amount, currency)
    note += f"; refunded so far {format_money(refunded, currency)} of {total}"
    _flag_attention(conn, payment.order_id, note, now)
    write_events(
        conn,
        [
            event_row(
                payment.order_id, ACTOR, EventKind.EXTERNAL_REFUND, payment.order_status, None, note, at=now
            )
        ],
    )
    remember_version(conn, refund_id, event["created"], event["id"])
    return Effect(Outcome.APPLIED, payment.order_id, note)


def refund_event(conn: Connection, event: Event) -> Effect:
    """refund.created, refund.updated."""
    return apply_refund(conn, event["data"]["object"], event)


def charge_refunded(conn: Connection, event: Event) -> Effect:
    """charge.refunded: each refund it lists, as refund events; without the list (newer
    API versions do not expand it), a check that our books hold what Stripe refunded."""
    charge = event["data"]["object"]
    listed = _field(_field(charge, "refunds", {}), "data", [])
    if isinstance(listed, list) and listed:
        effects = [
            apply_refund(
                conn, {**r, "payment_intent": r.get("payment_intent") or charge.get("payment_intent")}, event
            )
            for r in listed
            if isinstance(r, dict)
        ]
        for outcome in (Outcome.APPLIED, Outcome.NO_CHANGE, Outcome.STALE, Outcome.UNMATCHED):
            chosen = [e for e in effects if e.outcome == outcome]
            if chosen:
                return Effect(outcome, chosen[0].order_id, "; ".join(e.detail for e in chosen))
        return Effect(Outcome.IGNORED, None, "The charge lists no refund.")
    payment = _payment_for(conn, _id_of(charge.get("payment_intent")))
    if payment is None:
        return Effect(Outcome.UNMATCHED, None, f"Charge {charge.get('id')} is for a payment we do not know.")
    known = int(
        conn.execute(
            select(func.coalesce(func.sum(refunds.c.amount), 0)).where(
                refunds.c.payment_id == payment.id, refunds.c.status.in_(COUNTED_REFUND_STATUSES)
            )
        ).scalar_one()
    )
    stripe_total = int(_field(charge, "amount_refunded", 0))
    if stripe_total <= known:
        return Effect(Outcome.NO_CHANGE, payment.order_id, "Our books hold every refund of this charge.")
    now = utcnow()
    note = (
        f"Stripe reports {format_money(stripe_total, payment.order_currency)} refunded on charge "
        f"{charge.get('id')}; Orders Desk knows of {format_money(int(known), payment.order_currency)}"
    )
    _flag_attention(conn, payment.order_id, note, now)
    write_events(
        conn,
        [event_row(payment.order_id, ACTOR, EventKind.ATTENTION, payment.order_status, None, note, at=now)],
    )
    return Effect(Outcome.APPLIED, payment.order_id, note)


# -- disputes ---------------------------------------------------------------------------------
def dispute_event(conn: Connection, event: Event) -> Effect:
    """charge.dispute.created / updated / closed: the order's dispute, as Stripe holds it."""
    dispute = event["data"]["object"]
    dispute_id = _id_of(dispute.get("id"))
    if dispute_id is None:
        return Effect(Outcome.IGNORED, None, "A dispute without an id.")
    payment = _payment_for(conn, _id_of(dispute.get("payment_intent")))
    if payment is None:
        return Effect(Outcome.UNMATCHED, None, f"Dispute {dispute_id} is about a payment we do not know.")
    if is_stale(conn, dispute_id, event["created"]):
        return Effect(
            Outcome.STALE, payment.order_id, f"A newer event about dispute {dispute_id} was applied."
        )
    now = utcnow()
    status = str(_field(dispute, "status", "needs_response"))[:32]
    reason = str(_field(dispute, "reason", "general"))[:64]
    amount = int(_field(dispute, "amount", payment.amount))
    currency = str(_field(dispute, "currency", payment.order_currency)).lower()[:3]
    due = _when(_field(_field(dispute, "evidence_details", {}), "due_by"))
    values = dict(
        reason=reason,
        amount=amount,
        currency=currency,
        status=status,
        evidence_due_by=due,
        updated_at=now,
        closed_at=now if is_closed(status) else None,
    )
    existing = conn.execute(
        select(disputes.c.id, disputes.c.status).where(disputes.c.gateway_dispute_id == dispute_id)
    ).first()
    money = format_money(amount, currency)
    if existing is None:
        conn.execute(
            insert(disputes).values(
                gateway_dispute_id=dispute_id,
                order_id=payment.order_id,
                payment_id=payment.id,
                gateway=payment.gateway,
                opened_at=_when(dispute.get("created")) or now,
                **values,
            )
        )
        note = f"Dispute {dispute_id} opened: {reason}, {money}, {status_label(status)}"
        if due:
            note += f"; evidence due by {due:%Y-%m-%d %H:%M} UTC"
    else:
        conn.execute(update(disputes).where(disputes.c.id == existing.id).values(**values))
        if is_closed(status):
            note = f"Dispute {dispute_id} closed: {status_label(status)} ({money})"
        else:
            note = f"Dispute {dispute_id} is now {status_label(status)} ({reason}, {money})"
    write_events(
        conn,
        [event_row(payment.order_id, ACTOR, EventKind.DISPUTE, payment.order_status, None, note, at=now)],
    )
    remember_version(conn, dispute_id, event["created"], event["id"])
    return Effect(Outcome.APPLIED, payment.order_id, note)


# The event types acted on; any other is kept in the inbox as ignored.
DATABASE_HANDLERS = {
    "payment_intent.payment_failed": payment_failed,
    "charge.refunded": charge_refunded,
    "refund.created": refund_event,
    "refund.updated": refund_event,
    "charge.refund.updated": refund_event,
    "charge.dispute.created": dispute_event,
    "charge.dispute.updated": dispute_event,
    "charge.dispute.closed": dispute_event,
}
GATEWAY_HANDLERS = {"payment_intent.succeeded": payment_succeeded}
HANDLED_TYPES = tuple(GATEWAY_HANDLERS) + tuple(DATABASE_HANDLERS)

__all__ = ["Effect", "DATABASE_HANDLERS", "GATEWAY_HANDLERS", "HANDLED_TYPES", "apply_refund", "ACTOR"]
