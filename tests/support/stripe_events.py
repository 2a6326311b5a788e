"""Stripe events as Stripe sends them, and Stripe's signature scheme, for the webhook
tests: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the
endpoint's secret (https://docs.stripe.com/webhooks#verify-manually)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time

_ids = itertools.count(1)


def event(kind: str, obj: dict, *, created: int | None = None, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_test_{int(time.time() * 1000)}_{next(_ids)}",
        "object": "event",
        "api_version": "2024-06-20",
        "type": kind,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "data": {"object": obj},
    }


def payment_intent(pi_id: str, *, amount: int = 1000, currency: str = "usd", decline_code: str | None = None):
    obj = {"id": pi_id, "object": "payment_intent", "amount": amount, "currency": currency}
    if decline_code:
        obj["status"] = "requires_payment_method"
        obj["last_payment_error"] = {
            "code": "card_declined",
            "decline_code": decline_code,
            "message": "Your card has insufficient funds.",
        }
    else:
        obj["status"] = "succeeded"
    return obj


def refund(
    re_id: str, pi_id: str, *, amount: int, currency: str = "usd", status: str = "succeeded", key: str = ""
):
    return {
        "id": re_id,
        "object": "refund",
        "amount": amount,
        "currency": currency,
        "payment_intent": pi_id,
        "charge": "ch_" + pi_id[3:],
        "status": status,
        "metadata": {"refund_key": key} if key else {},
        "created": int(time.time()),
    }


def dispute(
    dp_id: str, pi_id: str, *, amount: int, status: str = "needs_response", reason: str = "fraudulent"
):
    return {
        "id": dp_id,
        "object": "dispute",
        "amount": amount,
        "currency": "usd",
        "payment_intent": pi_id,
        "charge": "ch_" + pi_id[3:],
        "reason": reason,
        "status": status,
        "evidence_details": {"due_by": int(time.time()) + 7 * 86400},
        "created": int(time.time()),
    }


def signature(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def body_of(evt: dict) -> bytes:
    return json.dumps(evt).encode()
