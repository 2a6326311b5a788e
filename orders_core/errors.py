"""Errors a caller can act on. Every refusal of a business rule is an OrdersError,
so the CLI maps them to exit code 1 and the pages show their message as is."""

from __future__ import annotations


class OrdersError(Exception):
    """A business rule refused the request; the message says why."""


class ValidationError(OrdersError):
    """Input that is malformed, out of range or inconsistent."""


class FieldErrors(ValidationError):
    """Several fields of one form refused at once: `fields` maps each field's name to
    what is wrong with it, so a form can show every message at its own field."""

    def __init__(self, fields: dict[str, str], *, subject: str = "form"):
        self.fields = dict(fields)
        messages = list(self.fields.values())
        if len(messages) == 1:
            super().__init__(messages[0])
        else:
            super().__init__(f"The {subject} has {len(messages)} problems: " + " ".join(messages))


class NotFound(OrdersError):
    pass


class AuthenticationError(OrdersError):
    pass


class PermissionDenied(OrdersError):
    pass


class AccessWithdrawn(PermissionDenied):
    """The acting staff member was deactivated (or their account is gone) since they
    signed in or asked for the work: the database, not the caller's Actor, decides."""


class SignInLocked(AuthenticationError):
    """Too many failed sign-ins for this account from this address; `retry_at` (naive
    UTC) is when the next attempt is accepted."""

    def __init__(self, message: str, retry_at):
        super().__init__(message)
        self.retry_at = retry_at


class AccountDeactivated(AuthenticationError):
    """The right password (or identity) for an account that was deactivated."""


class StaleOrder(OrdersError):
    """Someone else changed the order between our read and our write."""


class InProgress(OrdersError):
    """Another process is charging or refunding this order right now."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PaymentError(OrdersError):
    """The payment gateway refused or failed; `code` is the gateway's reason and
    `order_number` the order it was for, when one is known (a decline at checkout
    names the order that was created and stays unpaid)."""

    def __init__(self, message: str, code: str | None = None, *, order_number: str | None = None):
        super().__init__(message)
        self.code = code
        self.order_number = order_number


class CardDeclined(PaymentError):
    pass


class InvalidToken(PaymentError):
    pass


class GatewayUnavailable(PaymentError):
    """A transient failure (network, 5xx, rate limit): safe to retry with the same key."""

    def __init__(
        self,
        message: str,
        code: str | None = None,
        retry_after: float | None = None,
        *,
        order_number: str | None = None,
    ):
        super().__init__(message, code, order_number=order_number)
        self.retry_after = retry_after


class RefundFailed(PaymentError):
    pass


class ExportFailed(OrdersError):
    """The export could not be written (the reason is in the message)."""
