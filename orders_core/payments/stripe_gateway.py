"""The Stripe gateway: the PaymentGateway protocol over Stripe's PaymentIntents and
Refunds, through the official SDK (stripe-python v16, `stripe.StripeClient`).

It answers callers exactly as the simulated gateway does (same Charge and
GatewayRefund shapes, same exception classes), with these differences that come
from Stripe itself:

* A freshly created PaymentIntent has no card yet, so `create_payment` answers
  `requires_payment_method` (the simulated gateway answers `requires_confirmation`).
* `confirm_payment` is two requests: attach the card to the intent (an update,
  under the idempotency key `<key>:attach`), then confirm it (under `<key>`). Both
  keys are derived from the caller's key, so a retry with the same key replays
  both answers instead of charging twice. A single "confirm with payment_method"
  would work on Stripe but not on localstripe, which the integration tests use.

Secrets: the API key lives only inside the SDK client and the customer's token is
never put into a message, a log line or an exception chain of ours.
"""

from __future__ import annotations

import calendar
import datetime as dt
import email.utils
import re
import time
from collections.abc import Iterator
from typing import Any

import stripe

from ..config import Settings
from ..errors import OrdersError
from .base import (
    CardDeclined,
    Charge,
    GatewayRefund,
    GatewayUnavailable,
    InvalidToken,
    PaymentError,
    RefundFailed,
)
from .listing import ListedPayment

_KEY_PREFIXES = ("sk_", "rk_")
# What the checkout form may hand us: a PaymentMethod id or a (legacy) card token.
_TOKEN_PATTERN = re.compile(r"^(pm|tok)_[A-Za-z0-9_]{1,200}$")
_INVALID_TOKEN_MESSAGE = (
    "The card token was not accepted. Use a payment method (pm_...) or "
    "card token (tok_...) from the checkout form."
)
_REDACTED = "[redacted]"


class StripeGateway:
    name = "stripe"
    refund_page_size = 100  # Stripe's maximum `limit` for a list

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        http_client: stripe.HTTPClient | None = None,
        period_filter_on_server: bool = True,
    ):
        api_key = _checked_key(api_key)
        # Listing a period sends Stripe a `created` filter; False lists everything and
        # filters here (localstripe, the tests' fake, rejects the filter on these lists).
        self.period_filter_on_server = period_filter_on_server
        base_addresses = {"api": api_base.rstrip("/")} if api_base else None
        self.api_base = base_addresses["api"] if base_addresses else stripe.DEFAULT_API_BASE
        self._client = stripe.StripeClient(
            api_key,
            base_addresses=base_addresses,
            max_network_retries=max(0, int(max_network_retries)),
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        return cls(
            settings.stripe_api_key,
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )

    def __repr__(self) -> str:  # never the key
        return f"StripeGateway(api_base={self.api_base!r})"

    # -- charges -----------------------------------------------------------------
    def create_payment(self, *, amount, currency, reference, idempotency_key):
        try:
            intent = self._client.v1.payment_intents.create(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "payment_method_types": ["card"],
                    "metadata": {"order": reference},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as err:
            raise _translate(err) from _cause(err)
        return _charge(intent)

    def confirm_payment(self, payment_id, *, token, idempotency_key):
        if not isinstance(token, str) or not _TOKEN_PATTERN.fullmatch(token):
            raise InvalidToken(_INVALID_TOKEN_MESSAGE, "invalid_token")
        if token.startswith("pm_"):
            attach: dict[str, Any] = {"payment_method": token}
        else:
            attach = {"payment_method_data": {"type": "card", "card": {"token": token}}}
        intents = self._client.v1.payment_intents
        error: PaymentError | None = None
        try:
            intents.update(
                payment_id, params=attach, options={"idempotency_key": f"{idempotency_key}:attach"}
            )
        except stripe.StripeError as err:
            error = _translate_attach(err, token)
        if error is None:
            try:
                intent = intents.confirm(payment_id, options={"idempotency_key": idempotency_key})
            except stripe.StripeError as err:
                error = _translate_confirm(err, token)
            else:
                return _charge(intent)
        # `from None`: Stripe's own error text may quote the token ("No such
        # PaymentMethod: 'pm_...'"), so it must not ride along as the cause.
        raise error from None

    def retrieve_payment(self, payment_id):
        try:
            intent = self._client.v1.payment_intents.retrieve(payment_id)
        except stripe.StripeError as err:
            raise _translate(err) from _cause(err)
        return _charge(intent)

    def cancel_payment(self, payment_id):
        try:
            intent = self._client.v1.payment_intents.cancel(payment_id)
        except stripe.InvalidRequestError:
            # Not cancelable any more (it succeeded, or is processing): say how it stands.
            return self.retrieve_payment(payment_id)
        except stripe.StripeError as err:
            raise _translate(err) from _cause(err)
        return _charge(intent)

    # -- refunds -----------------------------------------------------------------
    def refund(self, payment_id, *, amount, idempotency_key, reference):
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise RefundFailed("A refund amount must be positive.", "amount_invalid")
        try:
            refund = self._client.v1.refunds.create(
                params={
                    "payment_intent": payment_id,
                    "amount": amount,
                    "metadata": {"refund_key": reference},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as err:
            # charge_already_refunded, amount_too_large, a payment that failed, ...
            raise RefundFailed(_message(err), err.code or "refund_failed") from err
        except stripe.StripeError as err:
            raise _translate(err) from _cause(err)
        return _refund(refund, payment_id)

    def list_refunds(self, payment_id):
        try:
            page = self._client.v1.refunds.list(
                params={"payment_intent": payment_id, "limit": self.refund_page_size}
            )
            refunds = [_refund(r, payment_id) for r in page.auto_paging_iter()]
        except stripe.StripeError as err:
            raise _translate(err) from _cause(err)
        # Stripe lists the newest first; callers get them in the order they were made.
        refunds.reverse()
        return refunds

    # -- listing a period (reconciliation) ---------------------------------------
    def list_payments(self, *, created_from, created_to):
        """PaymentIntents created in [created_from, created_to): Stripe's list endpoint,
        100 a page, every page (auto-paging)."""
        for intent in self._period_list(self._client.v1.payment_intents, created_from, created_to):
            metadata = _field(intent, "metadata")
            yield ListedPayment(
                payment_id=intent.id,
                status=intent.status,
                amount=intent.amount,
                currency=intent.currency,
                reference=(_field(metadata, "order", "") if metadata else "") or "",
                created=_from_epoch(intent.created),
            )

    def list_period_refunds(self, *, created_from, created_to):
        """Refunds created in [created_from, created_to), made here or anywhere else."""
        for refund in self._period_list(self._client.v1.refunds, created_from, created_to):
            yield _refund(refund, "")

    def _period_list(self, service: Any, created_from: dt.datetime, created_to: dt.datetime) -> Iterator[Any]:
        start, end = _to_epoch(created_from), _to_epoch(created_to)
        params: dict[str, Any] = {"limit": self.refund_page_size}
        if self.period_filter_on_server:
            params["created"] = {"gte": start, "lt": end}
        try:
            for item in service.list(params=params).auto_paging_iter():
                if start <= int(item.created) < end:
                    yield item
        except stripe.StripeError as err:
            raise _translate(err) from _cause(err)


def _to_epoch(moment: dt.datetime) -> int:
    """A naive UTC datetime as Stripe's `created` (whole seconds; a partial second
    rounds up, so a period's end excludes what it should)."""
    seconds = calendar.timegm(moment.timetuple())
    return seconds + (1 if moment.microsecond else 0)


def _from_epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).replace(tzinfo=None)


# -- construction --------------------------------------------------------------
def _checked_key(api_key: str | None) -> str:
    key = (api_key or "").strip()
    if not key:
        raise OrdersError(
            "STRIPE_API_KEY is not set: the Stripe gateway needs a secret key "
            "(sk_...) or a restricted key (rk_...)."
        )
    if not key.startswith(_KEY_PREFIXES):
        raise OrdersError(
            "STRIPE_API_KEY is not a secret key: it must start with sk_ "
            "(or rk_ for a restricted key); a publishable key (pk_) cannot charge."
        )
    return key


# -- Stripe objects to ours ----------------------------------------------------
def _field(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a StripeObject (not a dict in v16: no .get) or of a plain dict."""
    try:
        value = obj[name]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


def _charge(intent: Any) -> Charge:
    status = intent.status
    decline_code = message = None
    if status == "requires_payment_method":
        last_error = _field(intent, "last_payment_error")
        if last_error:
            decline_code = _field(last_error, "decline_code") or _field(last_error, "code")
            message = _field(last_error, "message")
    return Charge(
        payment_id=intent.id,
        status=status,
        amount=intent.amount,
        currency=intent.currency,
        decline_code=decline_code,
        message=message,
    )


def _refund(refund: Any, payment_id: str) -> GatewayRefund:
    metadata = _field(refund, "metadata")
    reference = _field(metadata, "refund_key", "") if metadata else ""
    return GatewayRefund(
        refund_id=refund.id,
        payment_id=_field(refund, "payment_intent") or payment_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        reference=reference,
    )


# -- Stripe errors to ours -----------------------------------------------------
def _message(err: stripe.StripeError, *secrets: str) -> str:
    """Stripe's human message (without the "Request req_...:" prefix), with any
    secret we know of blanked out."""
    text = err.user_message or type(err).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _error_field(err: stripe.StripeError, name: str) -> Any:
    body = err.json_body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get(name)
    return None


def _retry_after(err: stripe.StripeError) -> float | None:
    headers = err.headers or {}
    raw = None
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            raw = value
            break
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        pass
    try:  # the HTTP-date form
        when = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _translate(err: stripe.StripeError, *secrets: str) -> PaymentError:
    """The exception a caller gets for a Stripe error outside the special cases."""
    code = err.code or _error_field(err, "code")
    if isinstance(err, stripe.RateLimitError):
        return GatewayUnavailable(
            "Stripe is rate limiting our requests; try again shortly.",
            code or "rate_limit",
            retry_after=_retry_after(err),
        )
    if isinstance(err, stripe.APIConnectionError):
        return GatewayUnavailable(
            "Could not reach Stripe (network error or timeout); it is safe to try again.",
            "api_connection_error",
        )
    if isinstance(err, stripe.AuthenticationError):
        return PaymentError(
            "Stripe rejected the API key (STRIPE_API_KEY): it is wrong, revoked or for another account.",
            "authentication_error",
        )
    if isinstance(err, stripe.PermissionError):
        return PaymentError(
            "Stripe rejected the API key (STRIPE_API_KEY) for this request: "
            "a restricted key lacks the permission.",
            "permission_error",
        )
    if isinstance(err, stripe.IdempotencyError):
        # The same key with different parameters; the simulated gateway's code for it.
        return PaymentError(_message(err, *secrets), code or "idempotency_key_in_use")
    if isinstance(err, stripe.CardError):
        return CardDeclined(
            _message(err, *secrets), _error_field(err, "decline_code") or code or "card_declined"
        )
    if isinstance(err, stripe.InvalidRequestError):
        if err.http_status == 404:
            return PaymentError(_message(err, *secrets), code or "resource_missing")
        return PaymentError(_message(err, *secrets), code or "invalid_request")
    # APIError: 5xx, 409 (a concurrent request holds the key or the object's lock),
    # a response that is not Stripe's JSON (a proxy's error page), ...
    status = err.http_status
    if status == 409:
        return GatewayUnavailable(
            "Stripe is busy with a concurrent request for this payment; try again with the same key.",
            code or "lock_timeout",
            retry_after=_retry_after(err),
        )
    return GatewayUnavailable(
        f"Stripe failed to answer (HTTP {status or 'error'}); it is safe to try again with the same key.",
        code or "api_error",
        retry_after=_retry_after(err),
    )


def _cause(err: stripe.StripeError) -> stripe.StripeError | None:
    """The Stripe error to chain as the cause, or None when its text may quote the
    API key (Stripe's own message shows part of a rejected key)."""
    if isinstance(err, (stripe.AuthenticationError, stripe.PermissionError)):
        return None
    return err


def _about_payment_method(err: stripe.StripeError) -> bool:
    param = getattr(err, "param", None) or _error_field(err, "param") or ""
    return param.startswith("payment_method") or "token" in param


def _translate_attach(err: stripe.StripeError, token: str) -> PaymentError:
    """An error from attaching the customer's card to the intent."""
    if isinstance(err, stripe.InvalidRequestError):
        code = err.code or _error_field(err, "code")
        if _about_payment_method(err):
            return InvalidToken(_INVALID_TOKEN_MESSAGE, code or "invalid_token")
        # The card is the only thing we send here, so a 400 that names no other
        # parameter and is not about the intent's state is about the card
        # (localstripe answers a bare "Bad request" to payment_method_data).
        if (
            err.http_status == 400
            and code != "payment_intent_unexpected_state"
            and not (getattr(err, "param", None))
        ):
            return InvalidToken(_INVALID_TOKEN_MESSAGE, code or "invalid_token")
    return _translate(err, token)


def _translate_confirm(err: stripe.StripeError, token: str) -> PaymentError:
    """An error from confirming an intent the card was just attached to."""
    if isinstance(err, stripe.InvalidRequestError):
        code = err.code or _error_field(err, "code")
        # The intent exists (we just updated it), so a missing resource is the card.
        if _about_payment_method(err) or err.http_status == 404:
            return InvalidToken(_INVALID_TOKEN_MESSAGE, code or "invalid_token")
    return _translate(err, token)
