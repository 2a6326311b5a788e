"""Kinds of job-item failure, and which of them a retry can fix.

A failed item keeps its reason (for people) and its kind (for the retry rule). A retry
can succeed only where the failure was circumstantial (the gateway was down, another
process was refunding the order, the order changed under the move, the worker lost its
claim, or the order was in the wrong status then) and the order is in a status the move
applies to *now*: an order that is Canceled now is never retried. A failure that would
repeat whatever the order's status (the requester was not allowed, the card or the
refund was refused, the order does not exist) is never retried.

Imports only the errors and the status table: the job engine classifies, jobs.py
selects with `retryable_condition`, job_outcomes.py explains."""

from __future__ import annotations

import enum

from sqlalchemy import ColumnElement, and_, func, or_, select

from .errors import (
    GatewayUnavailable,
    InProgress,
    NotFound,
    PaymentError,
    PermissionDenied,
    RefundFailed,
    StaleOrder,
    ValidationError,
)
from .schema import job_items, orders
from .status import BULK_SOURCE_STATUSES, Action, IllegalMove, Status


class FailureKind(str, enum.Enum):
    GATEWAY_UNAVAILABLE = "gateway_unavailable"
    IN_PROGRESS = "in_progress"
    STALE = "stale"
    GAVE_UP = "gave_up"  # claimed again and again without a record (crashes, lost leases)
    ILLEGAL_MOVE = "illegal_move"
    PERMISSION = "permission"
    DECLINED = "declined"
    REFUND_FAILED = "refund_failed"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    OTHER = "other"

    @property
    def retryable(self) -> bool:
        return self in RETRYABLE_KINDS

    @property
    def why_not_retried(self) -> str:
        """Why a failure of this kind is not retried, for the person asking."""
        return WHY_NOT_RETRIED.get(self, "the failure would happen again")


# Worth a retry when the order's status allows the move now (retryable_condition).
RETRYABLE_KINDS = frozenset(
    {
        FailureKind.GATEWAY_UNAVAILABLE,
        FailureKind.IN_PROGRESS,
        FailureKind.STALE,
        FailureKind.GAVE_UP,
        FailureKind.ILLEGAL_MOVE,
    }
)

WHY_NOT_RETRIED = {
    FailureKind.PERMISSION: "the requester was not allowed to do this",
    FailureKind.DECLINED: "the payment gateway refused it",
    FailureKind.REFUND_FAILED: "the refund was refused by the payment gateway",
    FailureKind.NOT_FOUND: "the order does not exist",
    FailureKind.INVALID: "the request itself was refused",
    FailureKind.OTHER: "the failure would happen again",
}


def failure_kind(error: BaseException | None, *, transient: bool = False) -> FailureKind:
    """The kind of an item's failure from the error it failed with."""
    if isinstance(error, GatewayUnavailable):
        return FailureKind.GATEWAY_UNAVAILABLE
    if isinstance(error, InProgress):
        return FailureKind.IN_PROGRESS
    if isinstance(error, StaleOrder):
        return FailureKind.STALE
    if isinstance(error, IllegalMove):
        return FailureKind.ILLEGAL_MOVE
    if isinstance(error, PermissionDenied):
        return FailureKind.PERMISSION
    if isinstance(error, RefundFailed):
        return FailureKind.REFUND_FAILED
    if isinstance(error, PaymentError):
        return FailureKind.DECLINED
    if isinstance(error, NotFound):
        return FailureKind.NOT_FOUND
    if isinstance(error, ValidationError):
        return FailureKind.INVALID
    return FailureKind.GATEWAY_UNAVAILABLE if transient else FailureKind.OTHER


def parse_kind(value: str | None) -> FailureKind | None:
    try:
        return FailureKind(value) if value else None
    except ValueError:
        return FailureKind.OTHER


def kind_may_retry() -> ColumnElement[bool]:
    """A failed item whose kind a retry can fix (failures from before migration 0011
    have no kind: they are given the benefit of the doubt, as before)."""
    return or_(
        job_items.c.failure_kind.is_(None),
        job_items.c.failure_kind.in_(sorted(k.value for k in RETRYABLE_KINDS)),
    )


def retryable_condition(move: Action) -> ColumnElement[bool]:
    """Over job_items joined to orders: the failed items a retry of `move` can fix now."""
    return and_(
        job_items.c.status == "failed",
        kind_may_retry(),
        orders.c.status.in_(sorted(s.value for s in BULK_SOURCE_STATUSES[move])),
    )


class RetryPlan:
    """What "Retry failed" would do with a finished job's failures, as of now."""

    def __init__(self, job_id: int, failed: int, retryable: int, not_retryable: dict[str, int]):
        self.job_id = job_id
        self.failed = failed
        self.retryable = retryable
        self.not_retryable = not_retryable  # why not -> orders, most first

    def summary(self) -> str:
        """ "2 of 5 failed orders can be retried; 3 cannot: 2 the order is Canceled now …"."""
        if self.failed == 0:
            return f"Job #{self.job_id} has no failed orders."
        head = (
            f"All {self.failed:,} failed orders can be retried"
            if self.retryable == self.failed and self.failed > 1
            else f"{self.retryable:,} of {self.failed:,} failed order{'s' if self.failed != 1 else ''} "
            "can be retried"
        )
        if not self.not_retryable:
            return head + "."
        others = self.failed - self.retryable
        why = "; ".join(f"{n:,} because {reason}" for reason, n in self.not_retryable.items())
        return f"{head}; {others:,} cannot: {why}."

    def as_dict(self) -> dict:
        return {
            "job_id": self.job_id,
            "failed": self.failed,
            "retryable": self.retryable,
            "not_retryable": dict(self.not_retryable),
            "summary": self.summary(),
        }


def retry_plan(conn, job_id: int, move: Action | None) -> RetryPlan:
    """Count the failed items of job `job_id` that a retry of `move` can fix now, and
    say why the others cannot (grouped): one grouped query over the failed items."""
    query = (
        select(orders.c.status, job_items.c.failure_kind, func.count())
        .select_from(job_items.outerjoin(orders, orders.c.id == job_items.c.order_id))
        .where(job_items.c.job_id == job_id, job_items.c.status == "failed")
        .group_by(orders.c.status, job_items.c.failure_kind)
    )
    failed = retryable = 0
    why_not: dict[str, int] = {}
    for status, kind_value, count in conn.execute(query):
        failed += count
        kind = parse_kind(kind_value)
        if move is None:  # an export: its failures are retried as they are
            retryable += count
            continue
        allowed = BULK_SOURCE_STATUSES[move]
        if status is None:
            reason = WHY_NOT_RETRIED[FailureKind.NOT_FOUND]
        elif Status(status) not in allowed:
            refusal = IllegalMove("", Status(status), move, allowed)
            reason = f"the order is {refusal.status.label} now ({refusal.reason})"
        elif kind is not None and not kind.retryable:
            reason = kind.why_not_retried
        else:
            retryable += count
            continue
        why_not[reason] = why_not.get(reason, 0) + count
    ordered = dict(sorted(why_not.items(), key=lambda kv: (-kv[1], kv[0])))
    return RetryPlan(job_id, failed, retryable, ordered)
