"""The one rule for how much a refunding move hands back.

A refund returns what was paid, never more than the order's total, less what was
already refunded, and never a negative amount. The services, the bulk preflight and
the order page all ask here: `refundable_amount` in Python, and
`refundable_amount_sql` for set-based queries, the same rule as a SQL expression.
Pure: no database, no I/O (sqlalchemy only builds the expression).
"""

from __future__ import annotations

from sqlalchemy import case


def refundable_amount(total: int, refunded: int, paid: int | None = None) -> int:
    """Minor units a refund of the order would hand back now.

    `paid` is the successful charge's amount; None when the caller has not read the
    payment, in which case the order counts as paid in full (every charge is for the
    order's total)."""
    captured = total if paid is None else min(total, paid)
    return max(0, captured - refunded)


def refundable_amount_sql(total, refunded, paid=None):
    """`refundable_amount` over columns (or any SQL expressions)."""
    captured = total if paid is None else case((paid < total, paid), else_=total)
    return case((captured - refunded > 0, captured - refunded), else_=0)


__all__ = ["refundable_amount", "refundable_amount_sql"]
