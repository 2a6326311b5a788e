"""The order statuses, the actions staff and customers take, and the one table of
legal status moves that every path (single order, bulk job, CLI) consults; also the
states of a charge attempt and of a refund."""

from __future__ import annotations

import enum

from .errors import OrdersError


class Status(str, enum.Enum):
    CREATED = "created"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELED = "canceled"
    RETURNED = "returned"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Action(str, enum.Enum):
    PAY = "pay"
    FULFILL = "fulfill"
    CANCEL = "cancel"
    RETURN = "return"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class PaymentStatus(str, enum.Enum):
    """A charge attempt in our books (payments.status): pending while it is under way."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundStatus(str, enum.Enum):
    """A refund in our books (refunds.status): pending while it is under way."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundAction(str, enum.Enum):
    """Why a refund was made (refunds.action): by a Cancel or a Return here, or at the
    gateway without us (an external refund, learnt from its webhook)."""

    CANCEL = "cancel"
    RETURN = "return"
    EXTERNAL = "external"

    @property
    def label(self) -> str:
        return "Outside Orders Desk" if self is RefundAction.EXTERNAL else self.value.capitalize()


# (from status, action) -> to status. Anything absent is illegal.
MOVES: dict[tuple[Status, Action], Status] = {
    (Status.CREATED, Action.PAY): Status.PAID,
    (Status.CREATED, Action.CANCEL): Status.CANCELED,
    (Status.PAID, Action.CANCEL): Status.CANCELED,
    (Status.PAID, Action.FULFILL): Status.FULFILLED,
    (Status.FULFILLED, Action.RETURN): Status.RETURNED,
}

# Moves that hand the customer's money back: a full refund of what was paid.
REFUNDING_MOVES: frozenset[tuple[Status, Action]] = frozenset(
    {(Status.PAID, Action.CANCEL), (Status.FULFILLED, Action.RETURN)}
)

FINAL_STATUSES: frozenset[Status] = frozenset({Status.CANCELED, Status.RETURNED})

# Mass actions are narrower than single-order moves: the product page offers mass
# Fulfill and Cancel on paid orders only, and Return on fulfilled orders only.
BULK_SOURCE_STATUSES: dict[Action, frozenset[Status]] = {
    Action.FULFILL: frozenset({Status.PAID}),
    Action.CANCEL: frozenset({Status.PAID}),
    Action.RETURN: frozenset({Status.FULFILLED}),
}


class IllegalMove(OrdersError):
    """An action that does not apply to an order in its current status."""

    def __init__(
        self, order_number: str, status: Status, action: Action, allowed_from: frozenset[Status] | None = None
    ):
        self.order_number = order_number
        self.status = Status(status)
        self.action = Action(action)
        allowed = allowed_from if allowed_from is not None else statuses_allowing(action)
        self.allowed_from = allowed
        # Why, without naming the order: "Cancel applies to Paid orders only".
        self.reason = f"{self.action.label} applies to {_describe(allowed)} orders" + (
            " only" if len(allowed) == 1 else ""
        )
        super().__init__(f"Order {order_number} is {self.status.label}; {self.reason}")


def statuses_allowing(action: Action) -> frozenset[Status]:
    """The statuses from which `action` is a legal move."""
    return frozenset(src for (src, act) in MOVES if act == Action(action))


def legal_actions(status: Status) -> list[Action]:
    """Actions legal from `status`, in the order the table lists them."""
    return [act for (src, act) in MOVES if src == Status(status)]


def next_status(order_number: str, status: Status, action: Action) -> Status:
    """The status `action` moves an order to, or IllegalMove naming the order."""
    try:
        return MOVES[(Status(status), Action(action))]
    except KeyError:
        raise IllegalMove(order_number, status, action) from None


def check_bulk_move(order_number: str, status: Status, action: Action) -> Status:
    """Like next_status, but with the narrower source statuses of mass actions."""
    action = Action(action)
    allowed = BULK_SOURCE_STATUSES.get(action)
    if allowed is not None and Status(status) not in allowed:
        raise IllegalMove(order_number, status, action, allowed)
    return next_status(order_number, status, action)


def refunds_on(status: Status, action: Action) -> bool:
    return (Status(status), Action(action)) in REFUNDING_MOVES


def _describe(statuses: frozenset[Status]) -> str:
    ordered = [s.label for s in Status if s in statuses]
    if not ordered:
        return "no"
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]
