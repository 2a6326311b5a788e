"""Pure rules about disputes (chargebacks): which of Stripe's dispute statuses leave an
order disputed. An order is Disputed while any of its disputes is open or was lost;
a dispute won (or an inquiry closed without one) no longer is."""

from __future__ import annotations

# Stripe's dispute statuses, in the order a dispute usually moves through them.
DISPUTE_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
)
CLOSED_STATUSES = frozenset({"won", "lost", "warning_closed"})
# A dispute in these no longer marks its order Disputed.
SETTLED_IN_OUR_FAVOUR = ("won", "warning_closed")


def marks_order_disputed(status: str) -> bool:
    """True while a dispute in `status` should make staff think twice before shipping."""
    return status not in SETTLED_IN_OUR_FAVOUR


def is_closed(status: str) -> bool:
    return status in CLOSED_STATUSES


def status_label(status: str) -> str:
    """ "needs_response" -> "Needs response"."""
    return status.replace("_", " ").capitalize()


__all__ = [
    "DISPUTE_STATUSES",
    "CLOSED_STATUSES",
    "SETTLED_IN_OUR_FAVOUR",
    "marks_order_disputed",
    "is_closed",
    "status_label",
]
