"""Charging a card for an order, crash-safe, and settling charges a crash left pending.

A charge runs in two gateway calls, create and confirm, with the gateway's payment id
committed in between, under a payments row that is committed *pending* (with its
idempotency key and a short lease) before the first call. A crash at any point
leaves that pending row, and `recover_pending_payments` settles it by asking the
gateway what became of it, so a retry never charges twice.

Checkout charges through here; lifecycle recovers through here before it moves an
order, so neither imports the other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import exists, func, insert, literal, select, update

from .clock import utcnow
from .config import load_settings
from .db import Database
from .errors import CardDeclined, GatewayUnavailable, InvalidToken, PaymentError
from .idempotency_keys import charge_key
from .money import format_money
from .payments import Gateways
from .schema import order_events, orders, payments
from .staff import SYSTEM
from .status import PaymentStatus, Status
from .timeline import EventKind, charged_note, event_row, write_events


def insert_pending_payment(
    conn,
    order_id: int,
    number: str,
    gateway_name: str,
    amount: int,
    currency: str,
    now: dt.datetime,
    lease_seconds: float,
    *,
    first_attempt: bool = False,
) -> tuple[int, str]:
    """Commit-to-be a pending charge attempt with its key and lease: (payment id, key).
    `first_attempt`: the order was created in this same transaction, so it has no
    earlier attempt to count."""
    attempt = (
        1
        if first_attempt
        else conn.execute(
            select(func.count()).select_from(payments).where(payments.c.order_id == order_id)
        ).scalar_one()
        + 1
    )
    key = charge_key(number, attempt)
    payment_id = conn.execute(
        insert(payments).values(
            order_id=order_id,
            gateway=gateway_name,
            amount=amount,
            currency=currency,
            status=PaymentStatus.PENDING.value,
            idempotency_key=key,
            created_at=now,
            updated_at=now,
            locked_until=now + dt.timedelta(seconds=lease_seconds),
        )
    ).inserted_primary_key[0]
    return payment_id, key


def charge_card(
    db: Database,
    gateway,
    actor_label: str,
    order_id: int,
    number: str,
    payment_id: int,
    key: str,
    amount: int,
    currency: str,
    token: str,
) -> None:
    """Run the pending attempt `payment_id` at the gateway and record its outcome.

    Raises CardDeclined / InvalidToken (recorded as a failed attempt), or
    GatewayUnavailable (the attempt stays pending for recovery); each names the
    order in `order_number`."""
    confirming = False  # until confirm is sent, no money can have moved
    try:
        created = gateway.create_payment(
            amount=amount, currency=currency, reference=number, idempotency_key=f"{key}:create"
        )
        with db.statement() as conn:  # one statement: committed by itself
            conn.execute(
                update(payments)
                .where(payments.c.id == payment_id)
                .values(gateway_payment_id=created.payment_id, updated_at=utcnow())
            )
        confirming = True
        charge = gateway.confirm_payment(created.payment_id, token=token, idempotency_key=f"{key}:confirm")
    except (CardDeclined, InvalidToken) as declined:
        _record_failed_payment(db, actor_label, order_id, payment_id, declined)
        raise type(declined)(
            f"Payment for order {number} was declined: {declined}"
            + (f" ({declined.code})" if declined.code else ""),
            declined.code,
            order_number=number,
        ) from None
    except GatewayUnavailable as error:
        _release_payment(db, payment_id)
        if confirming:
            message = (
                f"The payment gateway did not answer, so whether order {number} was "
                f"charged is not known yet. Paying again first checks with the gateway "
                f"and never charges twice. ({error})"
            )
        else:
            message = (
                f"The payment gateway is unavailable; order {number} was not charged. "
                f"Try paying again. ({error})"
            )
        raise GatewayUnavailable(message, error.code, error.retry_after, order_number=number) from None
    except PaymentError as error:
        _record_failed_payment(db, actor_label, order_id, payment_id, error)
        error.order_number = error.order_number or number
        raise
    except Exception:
        _release_payment(db, payment_id)
        raise
    if not charge.succeeded:
        _record_failed_payment(
            db,
            actor_label,
            order_id,
            payment_id,
            PaymentError(charge.message or f"The payment ended as {charge.status}.", charge.decline_code),
        )
        raise CardDeclined(
            f"Payment for order {number} did not complete: {charge.status}.",
            charge.decline_code,
            order_number=number,
        )
    _record_paid(db, actor_label, order_id, payment_id, charge.payment_id, gateway.name, amount, currency)


def _record_paid(
    db, actor_label, order_id, payment_id, gateway_payment_id, gateway_name, amount, currency
) -> None:
    note = charged_note(format_money(amount, currency), gateway_name, gateway_payment_id)
    if db.is_postgres and _record_paid_move(db, actor_label, order_id, payment_id, gateway_payment_id, note):
        return
    with db.write() as conn:
        now = utcnow()
        conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(
                status=PaymentStatus.SUCCEEDED.value,
                gateway_payment_id=gateway_payment_id,
                locked_until=None,
                updated_at=now,
            )
        )
        moved = conn.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.status == Status.CREATED.value)
            .values(status=Status.PAID.value, paid_at=now, updated_at=now)
        ).rowcount
        if moved:
            write_events(
                conn,
                [event_row(order_id, actor_label, EventKind.PAY, Status.CREATED, Status.PAID, note, at=now)],
            )
        else:
            current = conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one()
            write_events(
                conn,
                [
                    event_row(
                        order_id,
                        actor_label,
                        EventKind.PAYMENT_RECEIVED,
                        current,
                        None,
                        note + "; the order had already moved on, refund it from the payment record",
                        at=now,
                    )
                ],
            )


def _record_paid_move(db, actor_label, order_id, payment_id, gateway_payment_id, note) -> bool:
    """PostgreSQL: the common case of _record_paid, the order still Created, as one
    statement (atomic by itself, in autocommit: one round trip instead of five): the
    paid move, the payment settled and the event, or nothing at all. False when the
    order had moved on (nothing written: _record_paid's transaction says so)."""
    now = utcnow()
    moved = (
        update(orders)
        .where(orders.c.id == order_id, orders.c.status == Status.CREATED.value)
        .values(status=Status.PAID.value, paid_at=now, updated_at=now)
        .returning(orders.c.id)
        .cte("moved")
    )
    settled = (
        update(payments)
        .where(payments.c.id == payment_id, exists(select(moved.c.id)))
        .values(
            status=PaymentStatus.SUCCEEDED.value,
            gateway_payment_id=gateway_payment_id,
            locked_until=None,
            updated_at=now,
        )
        .cte("settled")
    )
    event = event_row(order_id, actor_label, EventKind.PAY, Status.CREATED, Status.PAID, note, at=now)
    columns = [c for c in event if c != "order_id"]
    statement = (
        insert(order_events)
        .from_select(
            ["order_id", *columns],
            select(moved.c.id, *(literal(event[c], order_events.c[c].type) for c in columns)),
        )
        .add_cte(settled)
        .returning(order_events.c.id)
    )
    with db.statement() as conn:
        return conn.execute(statement).first() is not None


def _record_failed_payment(db, actor_label, order_id, payment_id, error) -> None:
    with db.write() as conn:
        now = utcnow()
        conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(
                status=PaymentStatus.FAILED.value,
                failure_code=getattr(error, "code", None),
                failure_message=str(error),
                locked_until=None,
                updated_at=now,
            )
        )
        status = conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one()
        code = getattr(error, "code", None)
        label = "Card declined" if isinstance(error, CardDeclined) else "Payment failed"
        write_events(
            conn,
            [
                event_row(
                    order_id,
                    actor_label,
                    EventKind.PAYMENT_FAILED,
                    status,
                    None,
                    f"{label}: {code + ' — ' if code else ''}{error}",
                    at=now,
                )
            ],
        )


def _release_payment(db, payment_id) -> None:
    try:
        with db.write() as conn:
            conn.execute(
                update(payments)
                .where(payments.c.id == payment_id, payments.c.status == PaymentStatus.PENDING.value)
                .values(locked_until=None)
            )
    except Exception:
        pass  # the lease runs out by itself


def recover_pending_payments(db: Database, gateways: Gateways, order_ids: list[int]) -> set[int]:
    """Settle charges left pending by a crash or an outage, by asking the gateway.
    Returns the orders found paid that way."""
    paid: set[int] = set()
    if not order_ids:
        return paid
    now = utcnow()
    with db.read() as conn:
        stuck = conn.execute(
            select(payments, orders.c.number)
            .join(orders, orders.c.id == payments.c.order_id)
            .where(payments.c.order_id.in_(order_ids), payments.c.status == PaymentStatus.PENDING.value)
        ).all()
    for row in stuck:
        if row.locked_until is not None and row.locked_until > now:
            continue  # someone is charging it right now
        with db.write() as conn:  # take the lease so two recoveries do not race
            taken = conn.execute(
                update(payments)
                .where(
                    payments.c.id == row.id,
                    payments.c.status == PaymentStatus.PENDING.value,
                    (payments.c.locked_until.is_(None)) | (payments.c.locked_until <= now),
                )
                .values(locked_until=now + dt.timedelta(seconds=load_settings().payment_lease_seconds))
            ).rowcount
        if not taken:
            continue
        if row.gateway_payment_id is None:
            _record_failed_payment(
                db,
                SYSTEM.label,
                row.order_id,
                row.id,
                PaymentError(
                    "The attempt stopped before reaching the payment gateway; nothing was charged.",
                    "abandoned",
                ),
            )
            continue
        try:
            gateway = gateways.named(row.gateway)
            charge = gateway.retrieve_payment(row.gateway_payment_id)
            if not charge.succeeded:
                # The confirm may still be on its way (a slow network outlives any lease):
                # cancel the intent so it can never be charged after we call it failed.
                charge = gateway.cancel_payment(row.gateway_payment_id)
        except PaymentError:
            # The gateway cannot say now: the attempt stays pending (the order shows a
            # payment in progress) and the next attempt asks again.
            _release_payment(db, row.id)
            continue
        if not charge.succeeded and charge.status != "canceled":
            _release_payment(db, row.id)  # still processing at the gateway: ask again later
            continue
        if charge.succeeded:
            _record_paid(
                db,
                SYSTEM.label,
                row.order_id,
                row.id,
                charge.payment_id,
                row.gateway,
                row.amount,
                row.currency,
            )
            paid.add(row.order_id)
        else:
            _record_failed_payment(
                db,
                SYSTEM.label,
                row.order_id,
                row.id,
                PaymentError(
                    "The attempt was interrupted and the gateway holds no completed charge; "
                    "nothing was charged.",
                    charge.decline_code or "interrupted",
                ),
            )
    return paid


__all__ = ["insert_pending_payment", "charge_card", "recover_pending_payments"]
