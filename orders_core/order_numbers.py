"""Human order numbers: ORD-000123 is the order with id 123."""

from __future__ import annotations

import re

from sqlalchemy import Text, cast, func

_NUMBER = re.compile(r"^\s*(?:ORD-)?0*(\d{1,12})\s*$", re.IGNORECASE)


def format_order_number(order_id: int) -> str:
    return f"ORD-{order_id:06d}"


def order_number_sql(order_id):
    """format_order_number as a SQL expression over an id column (PostgreSQL), for an
    INSERT that numbers the order it creates."""
    digits = cast(order_id, Text)
    return func.concat("ORD-", func.lpad(digits, func.greatest(6, func.length(digits)), "0"))


def parse_order_number(text: str) -> int | None:
    """The id behind 'ORD-000123', 'ord-123' or '123'; None if it is not one."""
    match = _NUMBER.fullmatch(text or "")
    return int(match.group(1)) if match else None
