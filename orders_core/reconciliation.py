"""Reconciliation: our payments and refunds against the gateway's, for a period of days.

`reconcile(db, ledger, period)` reads both sides and returns a ReconciliationReport of
the places where they disagree; clean books give an empty one. The comparisons are
pure functions over plain records (`compare_payment`, `compare_refund`, ...); the
reading around them is set-based and chunked:

1. the gateway's payments of the period, kept by id (the one map held in memory);
2. our payments of the period, read in keyset chunks and matched against it; one of
   ours the listing lacks (a period boundary, or really missing) is asked for alone;
3. the gateway's payments nobody matched: our payments looked up by those ids, in
   chunks (any date), so a charge with no order is told from one just over the edge;
4. the same for refunds (matched by the gateway's refund id, else by our idempotency
   key, which the gateway keeps as the refund's reference);
5. orders of the period (created in it, or refunded in it) whose refunded amount is
   not the sum of their succeeded refunds: one grouped query per chunk of order ids.

Money is integer minor units plus currency throughout. Storing a report and running
it as a job live in orders_core/reconciliation_jobs.py.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import func, or_, select

from .chunking import ID_LIST_LIMIT, chunks
from .clock import utcnow
from .csv_cells import spreadsheet_safe
from .db import Database
from .errors import PaymentError, ValidationError
from .money import format_money, to_major
from .payments.base import Charge, GatewayRefund
from .payments.listing import GatewayLedger, ListedPayment
from .schema import orders, payments, refunds

CHUNK = 5000  # rows of ours read per statement
MAX_PERIOD_DAYS = 366


class MismatchKind(str, enum.Enum):
    CHARGE_WITHOUT_ORDER = "charge_without_order"
    PAYMENT_NOT_AT_GATEWAY = "payment_not_at_gateway"
    REFUND_DIFFERS = "refund_differs"
    REFUND_UNKNOWN = "refund_unknown"
    REFUNDED_AMOUNT_DIFFERS = "refunded_amount_differs"

    @property
    def label(self) -> str:
        return KIND_LABELS[self]


KIND_LABELS = {
    MismatchKind.CHARGE_WITHOUT_ORDER: "Charge at the gateway with no paid order",
    MismatchKind.PAYMENT_NOT_AT_GATEWAY: "Payment we hold as succeeded that the gateway does not",
    MismatchKind.REFUND_DIFFERS: "Refund that differs in amount or status",
    MismatchKind.REFUND_UNKNOWN: "Refund at the gateway unknown to us",
    MismatchKind.REFUNDED_AMOUNT_DIFFERS: "Order whose refunded amount is not the sum of its refunds",
}


@dataclasses.dataclass(frozen=True)
class Period:
    """Whole days, UTC, both included."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValidationError(f"The period ends ({self.last}) before it starts ({self.first}).")
        if (self.last - self.first).days + 1 > MAX_PERIOD_DAYS:
            raise ValidationError(f"Reconcile at most {MAX_PERIOD_DAYS} days at once.")

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time())

    @property
    def end(self) -> dt.datetime:
        """The first moment after the period."""
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time())

    @classmethod
    def parse(cls, first: Any = None, last: Any = None, *, today: dt.date | None = None) -> Period:
        """From two days (date or YYYY-MM-DD); by default the last 30 days up to today."""
        today = today or dt.datetime.now(dt.UTC).date()
        end = _day(last, "To") if last not in (None, "") else today
        start = _day(first, "From") if first not in (None, "") else end - dt.timedelta(days=29)
        return cls(start, end)

    def describe(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


def _day(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"{field}: {str(value)[:40]!r} is not a day (YYYY-MM-DD).") from None


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One disagreement: what we hold (ours) and what the gateway holds (theirs)."""

    kind: MismatchKind
    order_number: str | None
    gateway_id: str | None
    ours_amount: int | None
    ours_currency: str | None
    ours_status: str | None
    theirs_amount: int | None
    theirs_currency: str | None
    theirs_status: str | None
    detail: str

    @property
    def ours(self) -> str:
        return _side(self.ours_amount, self.ours_currency, self.ours_status)

    @property
    def theirs(self) -> str:
        return _side(self.theirs_amount, self.theirs_currency, self.theirs_status)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind.value,
            "order_number": self.order_number,
            "gateway_id": self.gateway_id,
            "ours": {"amount": self.ours_amount, "currency": self.ours_currency, "status": self.ours_status},
            "theirs": {
                "amount": self.theirs_amount,
                "currency": self.theirs_currency,
                "status": self.theirs_status,
            },
            "detail": self.detail,
        }


def _side(amount: int | None, currency: str | None, status: str | None) -> str:
    parts = []
    if amount is not None and currency:
        parts.append(format_money(amount, currency))
    if status:
        parts.append(status)
    return " ".join(parts) if parts else "—"


@dataclasses.dataclass
class ReconciliationReport:
    gateway: str
    period: Period
    mismatches: list[Mismatch]
    payments_checked: int = 0  # ours, in the period
    refunds_checked: int = 0  # ours, in the period
    gateway_charges: int = 0  # theirs, in the period
    gateway_refunds: int = 0  # theirs, in the period
    orders_checked: int = 0

    @property
    def clean(self) -> bool:
        return not self.mismatches

    @property
    def counts(self) -> dict[str, int]:
        """Mismatches per kind, every kind listed (0 included), in MismatchKind order."""
        counts = {kind.value: 0 for kind in MismatchKind}
        for mismatch in self.mismatches:
            counts[mismatch.kind.value] += 1
        return counts

    def as_dict(self) -> dict:
        return {
            "gateway": self.gateway,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "clean": self.clean,
            "counts": self.counts,
            "checked": {
                "payments": self.payments_checked,
                "refunds": self.refunds_checked,
                "gateway_charges": self.gateway_charges,
                "gateway_refunds": self.gateway_refunds,
                "orders": self.orders_checked,
            },
            "mismatches": [m.as_dict() for m in self.mismatches],
        }


# -- the report as CSV ---------------------------------------------------------------------
CSV_COLUMNS = (
    "kind",
    "order_number",
    "gateway_id",
    "ours_amount",
    "ours_currency",
    "ours_status",
    "theirs_amount",
    "theirs_currency",
    "theirs_status",
    "detail",
)


def report_csv(mismatches: Iterable[Mismatch]) -> bytes:
    """UTF-8, CRLF, RFC 4180 quoting, like the orders export: amounts as exact major
    units (19.99), text cells spreadsheet-safe (orders_core/csv_cells.py)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for m in mismatches:
        row = [
            m.kind.value,
            m.order_number or "",
            m.gateway_id or "",
            _major(m.ours_amount, m.ours_currency),
            m.ours_currency or "",
            m.ours_status or "",
            _major(m.theirs_amount, m.theirs_currency),
            m.theirs_currency or "",
            m.theirs_status or "",
            m.detail,
        ]
        writer.writerow([spreadsheet_safe(value) for value in row])
    return out.getvalue().encode("utf-8")


def _major(amount: int | None, currency: str | None):
    return "" if amount is None or not currency else to_major(amount, currency)


# -- our records, as the comparisons take them ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OurPayment:
    order_number: str
    gateway_payment_id: str
    amount: int
    currency: str
    status: str  # pending, succeeded, failed
    order_status: str
    in_flight: bool = False  # pending, and its lease still held: a charge under way


@dataclasses.dataclass(frozen=True)
class OurRefund:
    order_number: str
    gateway_payment_id: str | None
    gateway_refund_id: str | None
    reference: str  # our idempotency key
    amount: int
    currency: str
    status: str  # pending, succeeded, failed
    in_flight: bool = False  # pending, and its lease still held: a refund under way


# -- the pure comparisons ----------------------------------------------------------------------
def compare_payment(ours: OurPayment, theirs: ListedPayment | Charge | None) -> Mismatch | None:
    """One of our payments against the gateway's record of it (None: it has none). A
    charge under way is left to the attempt that holds it."""
    if ours.in_flight:
        return None
    if theirs is None:
        if ours.status != "succeeded":
            return None  # a payment that never succeeded here: nothing moved that we count
        return _payment_mismatch(
            MismatchKind.PAYMENT_NOT_AT_GATEWAY, ours, None, "The gateway has no such payment."
        )
    if theirs.status == "succeeded":
        if ours.status == "succeeded":
            if (theirs.amount, theirs.currency) != (ours.amount, ours.currency):
                return _payment_mismatch(
                    MismatchKind.PAYMENT_NOT_AT_GATEWAY,
                    ours,
                    theirs,
                    f"The gateway charged {format_money(theirs.amount, theirs.currency)}, "
                    f"we hold {format_money(ours.amount, ours.currency)}.",
                )
            return None
        return _payment_mismatch(
            MismatchKind.CHARGE_WITHOUT_ORDER,
            ours,
            theirs,
            f"The gateway charged the card, but we hold this payment as {ours.status} and order "
            f"{ours.order_number} as {ours.order_status} (a lost confirm's answer?).",
        )
    if ours.status == "succeeded":
        return _payment_mismatch(
            MismatchKind.PAYMENT_NOT_AT_GATEWAY,
            ours,
            theirs,
            f"We hold it as succeeded; the gateway holds it as {theirs.status}.",
        )
    return None


def charge_without_payment(theirs: ListedPayment) -> Mismatch | None:
    """A payment at the gateway that matches no payment of ours at all."""
    if not theirs.succeeded:
        return None
    reference = f" (its reference says {theirs.reference})" if theirs.reference else ""
    return Mismatch(
        MismatchKind.CHARGE_WITHOUT_ORDER,
        None,
        theirs.payment_id,
        None,
        None,
        None,
        theirs.amount,
        theirs.currency,
        theirs.status,
        f"The gateway charged a card that no order of ours holds{reference}.",
    )


def _payment_mismatch(
    kind: MismatchKind, ours: OurPayment, theirs: ListedPayment | Charge | None, detail: str
) -> Mismatch:
    return Mismatch(
        kind,
        ours.order_number,
        ours.gateway_payment_id,
        ours.amount,
        ours.currency,
        ours.status,
        None if theirs is None else theirs.amount,
        None if theirs is None else theirs.currency,
        None if theirs is None else theirs.status,
        detail,
    )


def _same_refund_status(ours: str, theirs: str) -> bool:
    if ours == "failed":
        return theirs in ("failed", "canceled")
    return ours == theirs


def compare_refund(ours: OurRefund, theirs: GatewayRefund | None) -> Mismatch | None:
    """One of our refunds against the gateway's record of it (None: it has none). A
    refund under way is left to the attempt that holds it."""
    if ours.in_flight:
        return None
    if theirs is None:
        if ours.status == "failed":
            return None  # refused before any money moved: the gateway never held one
        detail = (
            "We hold it as succeeded; the gateway has no such refund."
            if ours.status == "succeeded"
            else "We hold it as pending and the gateway has none: an interrupted refund "
            "(the next Cancel or Return of the order settles it)."
        )
        return _refund_mismatch(MismatchKind.REFUND_DIFFERS, ours, None, detail)
    problems = []
    if (theirs.amount, theirs.currency) != (ours.amount, ours.currency):
        problems.append(
            f"the gateway refunded {format_money(theirs.amount, theirs.currency)}, "
            f"we hold {format_money(ours.amount, ours.currency)}"
        )
    if not _same_refund_status(ours.status, theirs.status):
        problems.append(f"we hold it as {ours.status}, the gateway as {theirs.status}")
    if not problems:
        return None
    detail = "; ".join(problems)
    return _refund_mismatch(MismatchKind.REFUND_DIFFERS, ours, theirs, detail[0].upper() + detail[1:] + ".")


def unknown_refund(theirs: GatewayRefund, order_number: str | None) -> Mismatch | None:
    """A refund at the gateway that matches no refund of ours."""
    if theirs.status in ("failed", "canceled"):
        return None  # no money moved
    where = f"on order {order_number}'s payment" if order_number else "on a payment no order of ours holds"
    return Mismatch(
        MismatchKind.REFUND_UNKNOWN,
        order_number,
        theirs.refund_id,
        None,
        None,
        None,
        theirs.amount,
        theirs.currency,
        theirs.status,
        f"The gateway holds a refund {where} that Orders Desk has no record of (made outside Orders Desk?).",
    )


def _refund_mismatch(
    kind: MismatchKind, ours: OurRefund, theirs: GatewayRefund | None, detail: str
) -> Mismatch:
    return Mismatch(
        kind,
        ours.order_number,
        (theirs.refund_id if theirs else None) or ours.gateway_refund_id or ours.reference,
        ours.amount,
        ours.currency,
        ours.status,
        None if theirs is None else theirs.amount,
        None if theirs is None else theirs.currency,
        None if theirs is None else theirs.status,
        detail,
    )


def refunded_amount_mismatch(
    order_number: str, currency: str, refunded_amount: int, refunds_sum: int
) -> Mismatch | None:
    if refunded_amount == refunds_sum:
        return None
    return Mismatch(
        MismatchKind.REFUNDED_AMOUNT_DIFFERS,
        order_number,
        None,
        refunded_amount,
        currency,
        "order refunded amount",
        refunds_sum,
        currency,
        "sum of its refunds",
        f"The order says {format_money(refunded_amount, currency)} refunded; its succeeded "
        f"refunds add up to {format_money(refunds_sum, currency)}.",
    )


# -- reading both sides ------------------------------------------------------------------------
Progress = Callable[[str, float], None]  # what it is doing, and how far along (0..1)


def _no_progress(stage: str, fraction: float) -> None:
    pass


def reconcile(
    db: Database, ledger: GatewayLedger, period: Period, *, progress: Progress = _no_progress
) -> ReconciliationReport:
    """Our payments and refunds at `ledger`'s gateway for `period`, against its own.
    `progress` hears what it is doing ("Reading the gateway's payments", ...)."""
    report = ReconciliationReport(gateway=ledger.name, period=period, mismatches=[])
    _reconcile_payments(db, ledger, period, report, progress)
    _reconcile_refunds(db, ledger, period, report, progress)
    progress("Comparing the orders' refunded amounts with their refunds", 0.85)
    _reconcile_refunded_amounts(db, period, report)
    report.mismatches.sort(
        key=lambda m: (list(MismatchKind).index(m.kind), m.order_number or "", m.gateway_id or "")
    )
    progress(f"Done: {len(report.mismatches):,} mismatches", 1.0)
    return report


def _payment_columns():
    return (
        payments.c.id,
        orders.c.number,
        payments.c.gateway_payment_id,
        payments.c.amount,
        payments.c.currency,
        payments.c.status,
        orders.c.status.label("order_status"),
        payments.c.locked_until,
    )


def _our_payment(row) -> OurPayment:
    return OurPayment(
        row.number,
        row.gateway_payment_id,
        row.amount,
        row.currency,
        row.status,
        row.order_status,
        _in_flight(row.status, row.locked_until),
    )


def _in_flight(status: str, locked_until: dt.datetime | None) -> bool:
    return status == "pending" and locked_until is not None and locked_until > utcnow()


def _keyset(db: Database, query, id_column, size: int = CHUNK) -> Iterator[list]:
    """`query` (ordered by nothing yet) in chunks of `size` rows, by ascending id."""
    after = 0
    while True:
        with db.read() as conn:
            rows = conn.execute(query.where(id_column > after).order_by(id_column).limit(size)).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1].id


def _reconcile_payments(db, ledger, period, report, progress) -> None:
    progress("Reading the gateway's payments", 0.0)
    theirs: dict[str, ListedPayment] = {}
    for listed in ledger.list_payments(created_from=period.start, created_to=period.end):
        theirs[listed.payment_id] = listed
    report.gateway_charges = len(theirs)
    progress(f"Comparing our payments with the gateway's {len(theirs):,}", 0.25)
    ours_in_period = (
        select(*_payment_columns())
        .join(orders, orders.c.id == payments.c.order_id)
        .where(
            payments.c.gateway == ledger.name,
            payments.c.gateway_payment_id.is_not(None),
            payments.c.created_at >= period.start,
            payments.c.created_at < period.end,
        )
    )
    unlisted: list[OurPayment] = []
    for rows in _keyset(db, ours_in_period, payments.c.id):
        for row in rows:
            report.payments_checked += 1
            ours = _our_payment(row)
            listed = theirs.pop(ours.gateway_payment_id, None)
            if listed is None:
                if ours.status == "succeeded":
                    unlisted.append(ours)  # over the period's edge at the gateway, or missing
                continue
            _add(report, compare_payment(ours, listed))
    for ours in unlisted:
        _add(report, compare_payment(ours, _retrieve(ledger, ours.gateway_payment_id)))
    # The gateway's payments of the period that none of ours in the period matched.
    leftover = [listed for listed in theirs.values() if listed.succeeded]
    for chunk in chunks(leftover, ID_LIST_LIMIT):
        with db.read() as conn:
            found = {
                row.gateway_payment_id: _our_payment(row)
                for row in conn.execute(
                    select(*_payment_columns())
                    .join(orders, orders.c.id == payments.c.order_id)
                    .where(
                        payments.c.gateway == ledger.name,
                        payments.c.gateway_payment_id.in_([listed.payment_id for listed in chunk]),
                    )
                )
            }
        for listed in chunk:
            ours_elsewhere = found.get(listed.payment_id)
            if ours_elsewhere is None:
                _add(report, charge_without_payment(listed))
            else:
                _add(report, compare_payment(ours_elsewhere, listed))


def _retrieve(ledger: GatewayLedger, payment_id: str) -> Charge | None:
    try:
        return ledger.retrieve_payment(payment_id)
    except PaymentError as error:
        if error.code == "resource_missing":
            return None
        raise


def _refund_columns():
    return (
        refunds.c.id,
        orders.c.number,
        payments.c.gateway_payment_id,
        refunds.c.gateway_refund_id,
        refunds.c.idempotency_key,
        refunds.c.amount,
        refunds.c.currency,
        refunds.c.status,
        refunds.c.locked_until,
    )


def _our_refund(row) -> OurRefund:
    return OurRefund(
        row.number,
        row.gateway_payment_id,
        row.gateway_refund_id,
        row.idempotency_key,
        row.amount,
        row.currency,
        row.status,
        _in_flight(row.status, row.locked_until),
    )


def _refunds_query():
    return (
        select(*_refund_columns())
        .join(orders, orders.c.id == refunds.c.order_id)
        .join(payments, payments.c.id == refunds.c.payment_id)
    )


def _reconcile_refunds(db, ledger, period, report, progress) -> None:
    progress("Reading the gateway's refunds", 0.45)
    theirs: dict[str, GatewayRefund] = {}
    for listed in ledger.list_period_refunds(created_from=period.start, created_to=period.end):
        theirs[listed.refund_id] = listed
    by_reference = {r.reference: r.refund_id for r in theirs.values() if r.reference}
    report.gateway_refunds = len(theirs)
    progress(f"Comparing our refunds with the gateway's {len(theirs):,}", 0.65)
    ours_in_period = _refunds_query().where(
        refunds.c.gateway == ledger.name,
        refunds.c.created_at >= period.start,
        refunds.c.created_at < period.end,
    )
    unlisted: list[OurRefund] = []
    for rows in _keyset(db, ours_in_period, refunds.c.id):
        for row in rows:
            report.refunds_checked += 1
            ours = _our_refund(row)
            refund_id = ours.gateway_refund_id or by_reference.get(ours.reference)
            listed = theirs.pop(refund_id, None) if refund_id else None
            if listed is None:
                if ours.status != "failed" or ours.gateway_refund_id:
                    unlisted.append(ours)
                continue
            _add(report, compare_refund(ours, listed))
    # Ours the period's listing lacks: ask for the refunds of their payments.
    held: dict[str, list[GatewayRefund]] = {}
    for ours in unlisted:
        payment_id = ours.gateway_payment_id
        if payment_id and payment_id not in held:
            try:
                held[payment_id] = ledger.list_refunds(payment_id)
            except PaymentError as error:
                if error.code != "resource_missing":
                    raise
                held[payment_id] = []
        match = next(
            (
                r
                for r in held.get(payment_id or "", [])
                if r.refund_id == ours.gateway_refund_id or (ours.reference and r.reference == ours.reference)
            ),
            None,
        )
        _add(report, compare_refund(ours, match))
    _unmatched_gateway_refunds(db, ledger, list(theirs.values()), report)


def _unmatched_gateway_refunds(db, ledger, leftover: list[GatewayRefund], report) -> None:
    """The gateway's refunds of the period none of ours in the period matched: ours of
    another day (matched by id or key), else unknown to us (with the order, if known)."""
    for chunk in chunks(leftover, ID_LIST_LIMIT // 2):
        ids = [r.refund_id for r in chunk]
        references = [r.reference for r in chunk if r.reference]
        with db.read() as conn:
            rows = conn.execute(
                _refunds_query().where(
                    refunds.c.gateway == ledger.name,
                    or_(refunds.c.gateway_refund_id.in_(ids), refunds.c.idempotency_key.in_(references)),
                )
            ).all()
            payment_ids = sorted({r.payment_id for r in chunk if r.payment_id})
            orders_by_payment = (
                dict(
                    conn.execute(
                        select(payments.c.gateway_payment_id, orders.c.number)
                        .join(orders, orders.c.id == payments.c.order_id)
                        .where(
                            payments.c.gateway == ledger.name, payments.c.gateway_payment_id.in_(payment_ids)
                        )
                    ).all()
                )
                if payment_ids
                else {}
            )
        by_id = {row.gateway_refund_id: _our_refund(row) for row in rows if row.gateway_refund_id}
        by_key = {row.idempotency_key: _our_refund(row) for row in rows}
        for listed in chunk:
            ours = by_id.get(listed.refund_id) or (by_key.get(listed.reference) if listed.reference else None)
            if ours is not None:
                _add(report, compare_refund(ours, listed))
            else:
                _add(report, unknown_refund(listed, orders_by_payment.get(listed.payment_id)))


def _reconcile_refunded_amounts(db: Database, period: Period, report: ReconciliationReport) -> None:
    """Orders created in the period, then orders created before it but refunded in it:
    each in keyset chunks, each row's refund sum from an index look-up."""
    refunds_sum = (
        select(func.coalesce(func.sum(refunds.c.amount), 0))
        .where(refunds.c.order_id == orders.c.id, refunds.c.status == "succeeded")
        .scalar_subquery()
    )
    columns = select(
        orders.c.id,
        orders.c.number,
        orders.c.currency,
        orders.c.refunded_amount,
        refunds_sum.label("refunds_sum"),
    )
    refunded_in_period = select(refunds.c.order_id).where(
        refunds.c.created_at >= period.start, refunds.c.created_at < period.end
    )
    scopes = [
        columns.where(orders.c.created_at >= period.start, orders.c.created_at < period.end),
        columns.where(orders.c.created_at < period.start, orders.c.id.in_(refunded_in_period)),
    ]
    for scope in scopes:
        for rows in _keyset(db, scope, orders.c.id):
            for row in rows:
                report.orders_checked += 1
                _add(
                    report,
                    refunded_amount_mismatch(
                        row.number, row.currency, int(row.refunded_amount or 0), int(row.refunds_sum)
                    ),
                )


def _add(report: ReconciliationReport, mismatch: Mismatch | None) -> None:
    if mismatch is not None:
        report.mismatches.append(mismatch)


__all__ = [
    "MismatchKind",
    "KIND_LABELS",
    "Period",
    "Mismatch",
    "ReconciliationReport",
    "OurPayment",
    "OurRefund",
    "CSV_COLUMNS",
    "report_csv",
    "compare_payment",
    "charge_without_payment",
    "compare_refund",
    "unknown_refund",
    "refunded_amount_mismatch",
    "reconcile",
]
