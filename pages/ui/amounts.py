"""Money typed into a filter box or carried in the URL, in major units."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from orders_core.errors import ValidationError

_AMOUNT = re.compile(r"^\d{1,10}(?:\.\d{1,2})?$")


def parse_major_amount(text, field: str) -> int | None:
    """'19.99' → 1999 minor units, exactly (Decimal, never float); '' → None.

    Totals are compared in each order's own currency with two decimals, as the shop
    mostly sells in (so '50' means $50.00, €50.00 or £50.00, and ¥5000)."""
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip().replace(",", "")
    if not _AMOUNT.match(raw):
        raise ValidationError(f"{field} must be an amount like 25 or 19.99, not {str(text)[:40]!r}.")
    try:
        return int((Decimal(raw) * 100).to_integral_exact())
    except InvalidOperation:  # pragma: no cover - the pattern rules it out
        raise ValidationError(f"{field} must be an amount like 25 or 19.99.") from None


def format_major_amount(minor: int | None) -> str:
    """1999 → '19.99', 5000 → '50' (the inverse of parse_major_amount)."""
    if minor is None:
        return ""
    whole, cents = divmod(int(minor), 100)
    return str(whole) if cents == 0 else f"{whole}.{cents:02d}"
