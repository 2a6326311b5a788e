"""When a mass action asks the person to type the number of orders.

Mass actions at or below ORDERS_CONFIRM_ABOVE_ORDERS orders and, in every currency, at
or below ORDERS_CONFIRM_ABOVE_REFUND (minor units) of refunds are confirmed with one
click; above them the person types the number of orders (Settings, read at start)."""

from __future__ import annotations

from collections.abc import Mapping

from orders_core.config import load_settings


def confirm_above_orders() -> int:
    return load_settings().confirm_above_orders


def confirm_above_refund() -> int:
    return load_settings().confirm_above_refund


def needs_typed_confirmation(order_count: int, refund_totals: Mapping[str, int]) -> bool:
    """True when a mass action is big enough that the person types the order count."""
    return order_count > confirm_above_orders() or any(
        amount > confirm_above_refund() for amount in refund_totals.values()
    )
