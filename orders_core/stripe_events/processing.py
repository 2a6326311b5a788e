"""Applying the inbox: claim the oldest pending event, run its handler, record the
outcome in the same transaction as the effect (so a crash never applies an event
twice or loses one), over and over. The job engine's worker loop calls this between
jobs; `python -m orders_core webhooks process` calls it too."""

from __future__ import annotations

import logging
import threading

from ..db import Database
from ..payments import GatewayDirectory, Gateways
from .effects import DATABASE_HANDLERS, GATEWAY_HANDLERS, Effect
from .inbox import ClaimedEvent, Outcome, claim_next, close_event, defer_event

log = logging.getLogger("orders_core.stripe_events")

RETRY_SECONDS = 5.0  # after an unexpected failure, times the attempt number


def process_pending_events(
    db: Database,
    gateways: GatewayDirectory | None = None,
    *,
    limit: int = 200,
    stop: threading.Event | None = None,
) -> int:
    """Apply up to `limit` pending events; returns how many were handled (closed or
    deferred). Safe to run in several processes at once."""
    gateways = gateways or Gateways(db)
    handled = 0
    while handled < limit and not (stop is not None and stop.is_set()):
        claimed = claim_next(db)
        if claimed is None:
            break
        apply_claimed(db, gateways, claimed)
        handled += 1
    return handled


def apply_claimed(db: Database, gateways: GatewayDirectory, claimed: ClaimedEvent) -> None:
    try:
        if claimed.type in GATEWAY_HANDLERS:
            effect = GATEWAY_HANDLERS[claimed.type](db, gateways, claimed.event)
            if effect.outcome == Outcome.DEFERRED:
                defer_event(
                    db,
                    claimed,
                    effect.retry_in or RETRY_SECONDS,
                    order_id=effect.order_id,
                    detail=effect.detail,
                )
                return
            with db.write() as conn:
                close_event(conn, claimed.id, effect.outcome, effect.order_id, effect.detail)
            return
        handler = DATABASE_HANDLERS.get(claimed.type)
        with db.write() as conn:
            effect = (
                handler(conn, claimed.event)
                if handler is not None
                else Effect(Outcome.IGNORED, None, f"Orders Desk does not act on {claimed.type} events.")
            )
            close_event(conn, claimed.id, effect.outcome, effect.order_id, effect.detail)
    except Exception as error:  # noqa: BLE001 - recorded on the event and tried again
        log.exception("Stripe event %s (%s) failed; it will be tried again", claimed.event_id, claimed.type)
        defer_event(db, claimed, RETRY_SECONDS * claimed.attempts, error=f"{type(error).__name__}: {error}")


__all__ = ["process_pending_events", "apply_claimed"]
