"""Verifying a Stripe webhook: the signature (`Stripe-Signature: t=...,v1=...`,
HMAC-SHA256 of "<t>.<body>" with the endpoint's secret) and its age, through the
official SDK, and the event's shape. Only this module and stripe_gateway import stripe.

The secret and the signature header never appear in an error of ours."""

from __future__ import annotations

import json
from typing import Any

import stripe

from ..errors import OrdersError

# Stripe's own default: a signature older than five minutes is refused (replays).
TOLERANCE_SECONDS = 300


class WebhookRejected(OrdersError):
    """The request is not a well-formed event signed with our secret, recently."""


def verify_stripe_event(payload: bytes, signature_header: str | None, secret: str) -> dict[str, Any]:
    """The event in `payload`, as a plain dict, if Stripe signed it with `secret` within
    the tolerance; else WebhookRejected saying which check failed (nothing secret)."""
    if not signature_header:
        raise WebhookRejected("The request has no Stripe-Signature header.")
    try:
        stripe.Webhook.construct_event(payload, signature_header, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as error:
        reason = "too old" if "tolerance" in str(error).lower() else "not valid"
        raise WebhookRejected(f"The Stripe signature is {reason}.") from None
    except Exception:  # noqa: BLE001 - signed, but not JSON or not an object the SDK can read
        raise WebhookRejected("The body is not a Stripe event.") from None
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("The body is not JSON.") from None
    check_event_shape(event)
    return dict(event)


def check_event_shape(event: Any) -> None:
    """An event as Stripe sends them: an evt_ id, a type, `created`, data.object with an id."""
    if not isinstance(event, dict):
        raise WebhookRejected("The body is not a Stripe event.")
    event_id, kind, created = event.get("id"), event.get("type"), event.get("created")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if (
        not isinstance(event_id, str)
        or not event_id.startswith("evt_")
        or len(event_id) > 255
        or not isinstance(kind, str)
        or not 0 < len(kind) <= 100
        or isinstance(created, bool)
        or not isinstance(created, int)
        or not isinstance(obj, dict)
        or not isinstance(obj.get("id"), str)
    ):
        raise WebhookRejected("The body is not a Stripe event (id, type, created, data.object).")


__all__ = ["verify_stripe_event", "check_event_shape", "WebhookRejected", "TOLERANCE_SECONDS"]
