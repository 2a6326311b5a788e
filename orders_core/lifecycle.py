"""Status moves after checkout: fulfil, cancel, return, with automatic full refunds.

Every path (a single order from a page or the CLI, a chunk of a bulk job) runs
`apply_moves`, which consults the one move table in status.py and does, for a batch
of orders:

1. one transaction that checks each move, applies the moves that need no money
   (guarded by the current status in the WHERE clause) and commits a *pending*
   refund row, with its idempotency key and a short lease, for each move that
   hands money back;
2. the gateway calls, outside any transaction: first the refunds the gateway already
   holds for that payment (a retry after a crash adopts the one with our key), then
   the refund itself with the same key;
3. one transaction that records each refund's result, moves the order and writes
   its event.

A crash anywhere leaves a pending refund row that the next attempt resumes, so no
order is ever refunded twice and none is moved without its refund.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from .charging import recover_pending_payments
from .chunking import ID_LIST_LIMIT, chunks
from .clock import utcnow
from .config import load_settings
from .db import Database
from .dispute_queries import disputed_orders
from .errors import (
    GatewayUnavailable,
    InProgress,
    NotFound,
    OrdersError,
    PaymentError,
    PermissionDenied,
    RefundFailed,
    StaleOrder,
    ValidationError,
)
from .idempotency_keys import refund_key
from .money import format_money
from .order_detail import OrderDetail
from .order_numbers import parse_order_number
from .payments import GatewayDirectory, GatewayRefund, Gateways
from .queries import read_order
from .refund_rules import refundable_amount
from .schema import orders, payments, refunds
from .staff import ACTION_PERMISSIONS, Actor, Permission, authorize
from .status import (
    Action,
    IllegalMove,
    PaymentStatus,
    RefundStatus,
    Status,
    check_bulk_move,
    next_status,
    refunds_on,
)
from .timeline import EventKind, event_row, refunded_note, write_events
from .validation import clean_text

# The timestamp column each status sets when an order enters it.
ENTERED_AT = {
    Status.PAID: "paid_at",
    Status.FULFILLED: "fulfilled_at",
    Status.CANCELED: "canceled_at",
    Status.RETURNED: "returned_at",
}
MAX_REASON = 1000
EXTERNAL_ORIGIN = "external"  # refunds.origin of a refund made at the gateway without us


@dataclasses.dataclass
class MoveOutcome:
    order_id: int
    number: str
    ok: bool
    error: OrdersError | None = None
    # True when the failure is temporary (gateway down, refund in flight elsewhere):
    # the order is unchanged and the same move may be tried again.
    transient: bool = False

    @property
    def reason(self) -> str | None:
        return str(self.error) if self.error else None


@dataclasses.dataclass
class _PendingRefund:
    order_id: int
    number: str
    from_status: Status
    to_status: Status
    refund_id: int
    key: str
    gateway: str
    gateway_payment_id: str
    amount: int
    currency: str
    # True when this attempt created the refund row: its key is new, so the gateway
    # cannot hold a refund under it yet and asking first would be a wasted request.
    fresh: bool = False
    result: GatewayRefund | BaseException | None = None


# -- public actions on one order -----------------------------------------------------
def fulfill_order(
    db: Database,
    actor: Actor,
    number: str,
    *,
    reason: str = "",
    gateways: Gateways | None = None,
    confirm_disputed: bool = False,
) -> OrderDetail:
    """Fulfil; a disputed order only with `confirm_disputed` (the person said yes)."""
    return _single(db, actor, number, Action.FULFILL, reason, gateways, confirm_disputed=confirm_disputed)


def cancel_order(
    db: Database, actor: Actor, number: str, *, reason: str = "", gateways: Gateways | None = None
) -> OrderDetail:
    return _single(db, actor, number, Action.CANCEL, reason, gateways)


def return_order(
    db: Database, actor: Actor, number: str, *, reason: str = "", gateways: Gateways | None = None
) -> OrderDetail:
    return _single(db, actor, number, Action.RETURN, reason, gateways)


def resolve_order_id(db: Database, number: str) -> int:
    order_id = parse_order_number(number) if isinstance(number, str) else None
    if order_id is not None:
        with db.read() as conn:
            found = conn.execute(select(orders.c.id).where(orders.c.id == order_id)).first()
        if found:
            return order_id
    raise NotFound(f"No order {str(number)[:40]!r}.")


def _single(db, actor, number, action, reason, gateways, *, confirm_disputed: bool = False) -> OrderDetail:
    order_id = resolve_order_id(db, number)
    [outcome] = apply_moves(
        db, actor, action, [order_id], reason=reason, gateways=gateways, confirm_disputed=confirm_disputed
    )
    if not outcome.ok:
        raise outcome.error
    return read_order(db, outcome.number)


# -- the engine ----------------------------------------------------------------------
GatewayRunner = Callable[[Callable[[_PendingRefund], None], Sequence[_PendingRefund]], None]


def _run_sequentially(call, pending):
    for item in pending:
        call(item)


def apply_moves(
    db: Database,
    actor: Actor,
    action: Action,
    order_ids: Iterable[int],
    *,
    reason: str = "",
    gateways: GatewayDirectory | None = None,
    job_id: int | None = None,
    bulk: bool = False,
    run_gateway_calls: GatewayRunner = _run_sequentially,
    confirm_disputed: bool = False,
) -> list[MoveOutcome]:
    """Move each order by `action`; one outcome per order id, in the order given.

    `bulk` applies the narrower source statuses of mass actions. `run_gateway_calls`
    lets the job engine spread refunds over a bounded, rate-limited pool. Fulfil
    refuses a disputed order unless `confirm_disputed`."""
    action = Action(action)
    if action == Action.PAY:
        raise OrdersError("Payment needs a card token; use pay_order.")
    actor = authorize(db, actor, ACTION_PERMISSIONS[action])
    reason = _clean_reason(reason)
    ids = list(dict.fromkeys(int(i) for i in order_ids))
    if not ids:
        return []
    gateways = gateways or Gateways(db)
    settings = load_settings()
    _recover_interrupted_payments(db, gateways, ids)
    lease = dt.timedelta(seconds=settings.payment_lease_seconds)
    outcomes: dict[int, MoveOutcome] = {}

    with db.write() as conn:
        now = utcnow()
        query = select(
            orders.c.id,
            orders.c.number,
            orders.c.status,
            orders.c.total_amount,
            orders.c.refunded_amount,
            orders.c.currency,
        ).where(_among(conn, orders.c.id, ids))
        if db.is_postgres:
            query = query.order_by(orders.c.id).with_for_update()
        rows = {r.id: r for r in conn.execute(query)}
        in_flight = _in_flight(conn, list(rows), now)
        disputed = (
            disputed_orders(conn, list(rows)) if action == Action.FULFILL and not confirm_disputed else {}
        )

        plain_moves: dict[Status, list] = {}
        refunding: list[tuple] = []
        for order_id in ids:
            row = rows.get(order_id)
            if row is None:
                outcomes[order_id] = MoveOutcome(
                    order_id, f"#{order_id}", False, NotFound(f"No order with id {order_id}.")
                )
                continue
            status = Status(row.status)
            try:
                target = (check_bulk_move if bulk else next_status)(row.number, status, action)
                if order_id in disputed:
                    raise ValidationError(
                        f"Order {row.number} is disputed: {disputed[order_id].describe()}. "
                        "Confirm to fulfil it anyway."
                    )
                busy = in_flight.get(order_id)
                if busy is not None and (busy.locked or busy.kind == "payment"):
                    raise InProgress(
                        f"A {busy.kind} for order {row.number} is in progress; "
                        f"try again in {busy.seconds_left(now)} s.",
                        retry_after=busy.seconds_left(now),
                    )
                if busy is not None and busy.action != action.value:
                    raise OrdersError(
                        f"Order {row.number} has an unfinished refund from an "
                        f"interrupted {busy.action.capitalize()}; run "
                        f"{busy.action.capitalize()} again to finish it."
                    )
            except OrdersError as error:
                outcomes[order_id] = MoveOutcome(
                    order_id, row.number, False, error, transient=isinstance(error, InProgress)
                )
                continue
            if refunds_on(status, action) and refundable_amount(row.total_amount, row.refunded_amount) > 0:
                refunding.append((row, status, target))
            else:
                plain_moves.setdefault(status, []).append(row)
        pending = _claim_refunds(conn, refunding, action, actor, reason, job_id, now, lease, outcomes)

        events = []
        for status, moving in plain_moves.items():
            target = next_status(moving[0].number, status, action)
            moved = _guarded_move(conn, [r.id for r in moving], status, target, now)
            for row in moving:
                if row.id in moved:
                    outcomes[row.id] = MoveOutcome(row.id, row.number, True)
                    events.append(
                        event_row(
                            row.id,
                            actor.label,
                            EventKind.of_move(action),
                            status,
                            target,
                            reason,
                            at=now,
                            job_id=job_id,
                        )
                    )
                else:
                    outcomes[row.id] = MoveOutcome(
                        row.id,
                        row.number,
                        False,
                        StaleOrder(f"Order {row.number} changed meanwhile; reload it and try again."),
                    )
        write_events(conn, events)

    if pending:
        run_gateway_calls(lambda item: _call_refund(gateways, item), pending)
        try:
            _settle_refunds(db, actor, action, reason, job_id, pending, outcomes)
        except BaseException:
            _release_leases(db, pending)
            raise
    return [outcomes[i] for i in ids]


def _clean_reason(reason) -> str:
    return clean_text(reason, "Reason", max_length=MAX_REASON, required=False, multiline=True)


@dataclasses.dataclass
class _Busy:
    kind: str
    locked_until: dt.datetime | None
    locked: bool
    action: str | None

    def seconds_left(self, now: dt.datetime) -> int:
        if self.locked_until is None:
            return 0
        return max(1, int((self.locked_until - now).total_seconds()) + 1)


def _in_flight(conn, order_ids: list[int], now: dt.datetime) -> dict[int, _Busy]:
    """Orders with a charge or refund under way (pending rows); locked if leased."""
    busy: dict[int, _Busy] = {}
    if not order_ids:
        return busy
    for table, kind, pending in (
        (payments, "payment", PaymentStatus.PENDING),
        (refunds, "refund", RefundStatus.PENDING),
    ):
        action = refunds.c.action if kind == "refund" else None
        columns = [table.c.order_id, table.c.locked_until] + ([action] if action is not None else [])
        for chunk in chunks(order_ids, ID_LIST_LIMIT):
            where = [_among(conn, table.c.order_id, chunk), table.c.status == pending.value]
            if kind == "refund":  # a refund made outside Orders Desk is not ours to finish
                where.append(refunds.c.origin != EXTERNAL_ORIGIN)
            for row in conn.execute(select(*columns).where(*where)):
                locked = row.locked_until is not None and row.locked_until > now
                if row.order_id not in busy or locked:
                    busy[row.order_id] = _Busy(
                        kind, row.locked_until, locked, row.action if kind == "refund" else None
                    )
    return busy


def _recover_interrupted_payments(db, gateways, ids: list[int]) -> None:
    """Before moving an order, settle any charge an earlier crash left pending."""
    with db.read() as conn:
        stuck = [
            r[0]
            for chunk in chunks(ids, ID_LIST_LIMIT)
            for r in conn.execute(
                select(payments.c.order_id).where(
                    _among(conn, payments.c.order_id, chunk),
                    payments.c.status == PaymentStatus.PENDING.value,
                )
            )
        ]
    if stuck:
        recover_pending_payments(db, gateways, stuck)


def _guarded_move(conn, ids: list[int], from_status: Status, to_status: Status, now: dt.datetime) -> set[int]:
    """Set-based status update that only touches orders still in `from_status`."""
    values = {"status": to_status.value, "updated_at": now}
    if to_status in ENTERED_AT:
        values[ENTERED_AT[to_status]] = now
    moved: set[int] = set()
    for chunk in chunks(ids, ID_LIST_LIMIT):
        result = conn.execute(
            update(orders)
            .where(orders.c.id.in_(chunk), orders.c.status == from_status.value)
            .values(**values)
            .returning(orders.c.id)
        )
        moved.update(r[0] for r in result)
    return moved


def _claim_refunds(
    conn, candidates, action, actor, reason, job_id, now, lease, outcomes
) -> list[_PendingRefund]:
    """Commit a pending refund row (or resume an interrupted one) for each order, with
    a lease; a handful of statements for the whole batch, not a few per order."""
    if not candidates:
        return []
    ids = [row.id for row, _, _ in candidates]
    paid: dict[int, object] = {}
    earlier: dict[int, int] = {}
    resumable: dict[int, object] = {}
    for chunk in chunks(ids, ID_LIST_LIMIT):
        for p in conn.execute(
            select(
                payments.c.id,
                payments.c.order_id,
                payments.c.gateway,
                payments.c.gateway_payment_id,
                payments.c.amount,
                payments.c.currency,
            )
            .where(
                _among(conn, payments.c.order_id, chunk), payments.c.status == PaymentStatus.SUCCEEDED.value
            )
            .order_by(payments.c.id)
        ):
            paid[p.order_id] = p  # the latest successful charge
        for r in conn.execute(
            select(
                refunds.c.id,
                refunds.c.order_id,
                refunds.c.status,
                refunds.c.idempotency_key,
                refunds.c.amount,
                refunds.c.origin,
            ).where(_among(conn, refunds.c.order_id, chunk))
        ):
            earlier[r.order_id] = earlier.get(r.order_id, 0) + 1
            if r.status == RefundStatus.PENDING.value and r.origin != EXTERNAL_ORIGIN:
                resumable[r.order_id] = r

    pending: list[_PendingRefund] = []
    resumed_ids: list[int] = []
    new_rows: list[dict] = []
    new_items: list[_PendingRefund] = []
    for row, status, target in candidates:
        payment = paid.get(row.id)
        if payment is None:
            outcomes[row.id] = MoveOutcome(
                row.id,
                row.number,
                False,
                RefundFailed(f"Order {row.number} has no successful payment to refund.", "no_payment"),
            )
            continue
        existing = resumable.get(row.id)
        if existing is not None:
            # An earlier attempt stopped half-way: resume it with the same key.
            resumed_ids.append(existing.id)
            pending.append(
                _PendingRefund(
                    row.id,
                    row.number,
                    status,
                    target,
                    existing.id,
                    existing.idempotency_key,
                    payment.gateway,
                    payment.gateway_payment_id,
                    existing.amount,
                    payment.currency,
                )
            )
            continue
        amount = refundable_amount(row.total_amount, row.refunded_amount, paid=payment.amount)
        if amount <= 0:
            outcomes[row.id] = MoveOutcome(
                row.id,
                row.number,
                False,
                RefundFailed(f"Order {row.number} has nothing left to refund.", "nothing_to_refund"),
            )
            continue
        key = refund_key(row.number, earlier.get(row.id, 0) + 1)
        new_rows.append(
            dict(
                order_id=row.id,
                payment_id=payment.id,
                gateway=payment.gateway,
                amount=amount,
                currency=payment.currency,
                status=RefundStatus.PENDING.value,
                idempotency_key=key,
                action=action.value,
                actor=actor.label,
                reason=reason,
                locked_until=now + lease,
                job_id=job_id,
                created_at=now,
                updated_at=now,
            )
        )
        new_items.append(
            _PendingRefund(
                row.id,
                row.number,
                status,
                target,
                0,
                key,
                payment.gateway,
                payment.gateway_payment_id,
                amount,
                payment.currency,
                fresh=True,
            )
        )
    for chunk in chunks(resumed_ids, ID_LIST_LIMIT):
        conn.execute(
            update(refunds)
            .where(_among(conn, refunds.c.id, chunk))
            .values(locked_until=now + lease, updated_at=now)
        )
    if new_rows:
        inserted = conn.execute(
            insert(refunds).returning(refunds.c.id, sort_by_parameter_order=True), new_rows
        )
        for item, refund_id in zip(new_items, inserted.scalars()):
            item.refund_id = refund_id
        pending.extend(new_items)
    return pending


def _among(conn, column, ids: Sequence[int]):
    """`column IN ids`; on PostgreSQL `= ANY` of one array parameter instead of one
    parameter per id: psycopg parses a statement of more than 50 parameters afresh at
    every execution (in Python: milliseconds for a chunk of 500), and the statement's
    text stays the same whatever the chunk's length."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(column.type)))
    return column.in_(ids)


def _call_refund(gateways: Gateways, item: _PendingRefund) -> None:
    """Ask the gateway what it already did for this key, and refund only if nothing."""
    try:
        gateway = gateways.named(item.gateway)
        if item.fresh:
            # A brand-new key: nothing to look up. The gateway itself refuses to refund
            # more than the charge, as Stripe does.
            item.result = gateway.refund(
                item.gateway_payment_id, amount=item.amount, idempotency_key=item.key, reference=item.key
            )
            return
        existing = gateway.list_refunds(item.gateway_payment_id)
        mine = [r for r in existing if r.reference == item.key and r.status != "failed"]
        if mine:
            item.result = mine[0]
            return
        refunded = sum(r.amount for r in existing if r.status in ("succeeded", "pending"))
        charge = gateway.retrieve_payment(item.gateway_payment_id)
        if refunded + item.amount > charge.amount:
            item.result = RefundFailed(
                f"The gateway already holds refunds of {format_money(refunded, item.currency)} "
                f"for order {item.number}'s payment; refusing to refund more than was paid.",
                "already_refunded",
            )
            return
        item.result = gateway.refund(
            item.gateway_payment_id, amount=item.amount, idempotency_key=item.key, reference=item.key
        )
    except Exception as error:  # recorded per order; a crash (BaseException) propagates
        item.result = error


def _settle_refunds(db, actor, action, reason, job_id, pending, outcomes) -> None:
    """Record every answer of the batch in one transaction: refunds that went through
    move their orders (guarded by status), refusals stay on record, outages stay pending."""
    done = [p for p in pending if isinstance(p.result, GatewayRefund)]
    refused = [
        p
        for p in pending
        if isinstance(p.result, PaymentError) and not isinstance(p.result, GatewayUnavailable)
    ]
    answered = {id(p) for p in done} | {id(p) for p in refused}
    retry = [p for p in pending if id(p) not in answered]
    with db.write() as conn:
        now = utcnow()
        events = []
        if done:
            conn.execute(
                update(refunds)
                .where(refunds.c.id == bindparam("b_refund"))
                .values(
                    status=RefundStatus.SUCCEEDED.value,
                    gateway_refund_id=bindparam("b_gateway_id"),
                    locked_until=None,
                    updated_at=now,
                ),
                [{"b_refund": p.refund_id, "b_gateway_id": p.result.refund_id} for p in done],
            )
            moved = _move_refunded(conn, done, now)
            for item in done:
                note = refunded_note(format_money(item.amount, item.currency), item.result.refund_id, reason)
                if item.order_id in moved:
                    events.append(
                        event_row(
                            item.order_id,
                            actor.label,
                            EventKind.of_move(action),
                            item.from_status,
                            item.to_status,
                            note,
                            at=now,
                            job_id=job_id,
                        )
                    )
                    outcomes[item.order_id] = MoveOutcome(item.order_id, item.number, True)
                    continue
                # The money went back but the order moved elsewhere meanwhile (a lease
                # expired under a very slow gateway): keep the books true and say so.
                conn.execute(
                    update(orders)
                    .where(orders.c.id == item.order_id)
                    .values(refunded_amount=orders.c.refunded_amount + item.amount, updated_at=now)
                )
                current = conn.execute(
                    select(orders.c.status).where(orders.c.id == item.order_id)
                ).scalar_one()
                events.append(
                    event_row(
                        item.order_id,
                        actor.label,
                        EventKind.REFUND,
                        current,
                        None,
                        note,
                        at=now,
                        job_id=job_id,
                    )
                )
                outcomes[item.order_id] = MoveOutcome(
                    item.order_id,
                    item.number,
                    False,
                    StaleOrder(f"Order {item.number} changed meanwhile; its refund was recorded."),
                )
        if refused:
            conn.execute(
                update(refunds)
                .where(refunds.c.id == bindparam("b_refund"))
                .values(
                    status=RefundStatus.FAILED.value,
                    failure_code=bindparam("b_code"),
                    failure_message=bindparam("b_message"),
                    locked_until=None,
                    updated_at=now,
                ),
                [
                    {"b_refund": p.refund_id, "b_code": p.result.code, "b_message": str(p.result)}
                    for p in refused
                ],
            )
            for item in refused:
                result = item.result
                message = (
                    f"Refund of {format_money(item.amount, item.currency)} for order "
                    f"{item.number} failed: {result}"
                    + (f" ({result.code})" if result.code else "")
                    + f"; the order stays {item.from_status.label}."
                )
                events.append(
                    event_row(
                        item.order_id,
                        actor.label,
                        EventKind.REFUND_FAILED,
                        item.from_status,
                        None,
                        message,
                        at=now,
                        job_id=job_id,
                    )
                )
                outcomes[item.order_id] = MoveOutcome(
                    item.order_id, item.number, False, RefundFailed(message, result.code)
                )
        for chunk in chunks([p.refund_id for p in retry], ID_LIST_LIMIT):
            # Transient or unknown: the refund stays pending for a retry with the same key.
            conn.execute(
                update(refunds)
                .where(_among(conn, refunds.c.id, chunk))
                .values(locked_until=None, updated_at=now)
            )
        for item in retry:
            result = item.result
            if isinstance(result, GatewayUnavailable):
                error = GatewayUnavailable(
                    f"The payment gateway is unavailable for order {item.number}: {result}; "
                    f"nothing was refunded twice and the order is unchanged. Try again.",
                    result.code,
                    result.retry_after,
                )
            else:
                error = GatewayUnavailable(
                    f"The payment gateway did not answer for order {item.number}: {result}"
                )
            outcomes[item.order_id] = MoveOutcome(item.order_id, item.number, False, error, transient=True)
        write_events(conn, events)


def _move_refunded(conn, done: list[_PendingRefund], now: dt.datetime) -> set[int]:
    """Move refunded orders, still guarded by their status, adding each one's refund
    to refunded_amount; returns the ids that moved."""
    moved: set[int] = set()
    groups: dict[tuple[Status, Status], list[_PendingRefund]] = {}
    for item in done:
        groups.setdefault((item.from_status, item.to_status), []).append(item)
    for (from_status, to_status), items in groups.items():
        for chunk in chunks(items, ID_LIST_LIMIT // 2):  # two id lists per statement
            refund_ids = [i.refund_id for i in chunk]
            just_refunded = (
                select(func.coalesce(func.sum(refunds.c.amount), 0))
                .where(refunds.c.order_id == orders.c.id, _among(conn, refunds.c.id, refund_ids))
                .scalar_subquery()
            )
            result = conn.execute(
                update(orders)
                .where(
                    _among(conn, orders.c.id, [i.order_id for i in chunk]),
                    orders.c.status == from_status.value,
                )
                .values(
                    status=to_status.value,
                    updated_at=now,
                    **{ENTERED_AT[to_status]: now},
                    refunded_amount=orders.c.refunded_amount + just_refunded,
                )
                .returning(orders.c.id)
            )
            moved.update(r[0] for r in result)
    return moved


def _release_leases(db: Database, pending: list[_PendingRefund]) -> None:
    try:
        with db.write() as conn:
            conn.execute(
                update(refunds)
                .where(
                    refunds.c.id.in_([p.refund_id for p in pending]),
                    refunds.c.status == RefundStatus.PENDING.value,
                )
                .values(locked_until=None)
            )
    except Exception:
        pass  # the lease expires by itself


# -- staff notes ---------------------------------------------------------------------
def add_note(db: Database, actor: Actor, number: str, text: str) -> None:
    """A staff note in the order's timeline; stored and shown as plain text."""
    actor = authorize(db, actor, Permission.NOTE)
    note = clean_text(text, "Note", max_length=4000, multiline=True)
    order_id = resolve_order_id(db, number)
    with db.write() as conn:
        write_events(conn, [event_row(order_id, actor.label, EventKind.NOTE, None, None, note, at=utcnow())])


__all__ = [
    "apply_moves",
    "fulfill_order",
    "cancel_order",
    "return_order",
    "add_note",
    "MoveOutcome",
    "resolve_order_id",
    "IllegalMove",
    "PermissionDenied",
]
