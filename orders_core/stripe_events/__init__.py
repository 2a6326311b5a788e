"""Stripe's webhooks: the durable inbox (inbox.py), what each event does (effects.py),
the worker's pass over the inbox (processing.py), and the events the simulated
gateway sends for its demos (simulated.py). The HTTP route is orders_web/webhooks.py."""

from __future__ import annotations

from .effects import HANDLED_TYPES, Effect
from .inbox import OUTCOMES, Outcome, Received, receive_event
from .processing import process_pending_events

__all__ = [
    "receive_event",
    "process_pending_events",
    "Received",
    "Outcome",
    "OUTCOMES",
    "Effect",
    "HANDLED_TYPES",
]
