"""The idempotency keys of charges and refunds: "<order number>:charge:<attempt>" and
"<order number>:refund:<attempt>". The gateway deduplicates on them and the stored
rows keep them, so checkout, lifecycle and the demo seed build them here alike."""

from __future__ import annotations


def charge_key(order_number: str, attempt: int) -> str:
    """The key of the order's `attempt`-th charge attempt (1 for the first)."""
    return f"{order_number}:charge:{attempt}"


def refund_key(order_number: str, attempt: int) -> str:
    """The key of the order's `attempt`-th refund (1 for the first)."""
    return f"{order_number}:refund:{attempt}"


__all__ = ["charge_key", "refund_key"]
