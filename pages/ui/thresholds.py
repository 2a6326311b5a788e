"""When a mass action asks the person to type the number of orders.

Mass actions at or below these sizes are confirmed with one click; above them the
person types the number of orders. Read on every use, so a restart is not needed."""
from __future__ import annotations

import logging
import os
import re
from typing import Mapping

_log = logging.getLogger(__name__)

CONFIRM_ABOVE_ORDERS_ENV = "ORDERS_CONFIRM_ABOVE_ORDERS"
CONFIRM_ABOVE_REFUND_ENV = "ORDERS_CONFIRM_ABOVE_REFUND"  # minor units, any one currency
DEFAULT_CONFIRM_ABOVE_ORDERS = 100
DEFAULT_CONFIRM_ABOVE_REFUND = 100_000


def _env_threshold(name: str, default: int) -> int:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if re.fullmatch(r"\d{1,15}", raw):
        return int(raw)
    _log.warning("%s must be a whole number >= 0, not %r; using %d", name, raw, default)
    return default


def confirm_above_orders() -> int:
    return _env_threshold(CONFIRM_ABOVE_ORDERS_ENV, DEFAULT_CONFIRM_ABOVE_ORDERS)


def confirm_above_refund() -> int:
    return _env_threshold(CONFIRM_ABOVE_REFUND_ENV, DEFAULT_CONFIRM_ABOVE_REFUND)


def needs_typed_confirmation(order_count: int, refund_totals: Mapping[str, int]) -> bool:
    """True when a mass action is big enough that the person types the order count."""
    return (order_count > confirm_above_orders()
            or any(amount > confirm_above_refund() for amount in refund_totals.values()))
