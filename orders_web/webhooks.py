"""POST /webhooks/stripe: Stripe's events, verified and stored, nothing more.

Only Stripe can use it: the body must carry a valid `Stripe-Signature` made with
STRIPE_WEBHOOK_SECRET within five minutes (the SDK's construct_event checks both),
else 400 and nothing is stored. A body over MAX_BODY_BYTES is refused (413) before it
is read in full, let alone parsed. A verified event is stored once in the inbox and
acknowledged at once; a worker applies it (orders_core.stripe_events). No session
and no CSRF token: the signature is the proof. The secret is never logged."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orders_core.config import load_settings
from orders_core.payments.stripe_webhooks import WebhookRejected, verify_stripe_event
from orders_core.stripe_events import receive_event

from .resources import database

log = logging.getLogger("orders_web.webhooks")

MAX_BODY_BYTES = 512 * 1024  # Stripe's events are a few KB; its largest well under this


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


async def _body(request: Request) -> bytes | None:
    """The raw body (the signature is over these exact bytes), or None when too large."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


async def stripe_webhook(request: Request) -> Response:
    secret = load_settings().stripe_webhook_secret
    if not secret:
        log.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set; refused with 503")
        return _refuse(503, "This endpoint is not configured (STRIPE_WEBHOOK_SECRET).")
    body = await _body(request)
    if body is None:
        return _refuse(413, f"A Stripe event of at most {MAX_BODY_BYTES} bytes is expected.")
    try:
        event = verify_stripe_event(body, request.headers.get("stripe-signature"), secret)
    except WebhookRejected as error:
        log.info("Stripe webhook refused: %s", error)
        return _refuse(400, str(error))
    received = await run_in_threadpool(receive_event, database(), event)
    return JSONResponse(
        {"received": True, "duplicate": not received.new}, headers={"Cache-Control": "no-store"}
    )


__all__ = ["stripe_webhook", "MAX_BODY_BYTES"]
