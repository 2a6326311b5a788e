"""Figures short enough for a dashboard tile: "$214.1k", "€1.3M", "12.4k orders".
The exact value goes next to them (a tooltip); these are only for reading at a glance.
Pure: no database, no framework."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .money import SYMBOLS, format_money, to_major

EXACT_BELOW = Decimal(10_000)  # smaller amounts are shown whole: "$9,999.99" fits a tile
_STEPS = ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k"))


def compact_number(value: Decimal | int) -> str:
    """12_345 → '12.3k'; 999 → '999'; one decimal, rounded half up, no trailing '.0'."""
    number = Decimal(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    steps = _STEPS[::-1]  # k, M, B, T
    chosen = next((i for i in range(len(steps) - 1, -1, -1) if number >= steps[i][0]), None)
    if chosen is None:
        return f"{sign}{number.quantize(Decimal(1), rounding=ROUND_HALF_UP):f}"
    size, suffix = steps[chosen]
    scaled = (number / size).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if scaled >= 1000 and chosen + 1 < len(steps):  # 999.96k rounds to 1000.0k: say 1M
        size, suffix = steps[chosen + 1]
        scaled = (number / size).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{sign}{f'{scaled:f}'.removesuffix('.0')}{suffix}"


def compact_money(amount: int, currency: str) -> str:
    """Minor units as a short amount: '$214.1k' for 21_412_345 usd; whole below 10,000."""
    major = to_major(abs(amount), currency)
    if major < EXACT_BELOW:
        return format_money(amount, currency)
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency.lower())
    short = compact_number(major)
    return f"{sign}{symbol}{short}" if symbol else f"{sign}{currency.upper()} {short}"


def compact_count(count: int) -> str:
    """A count of things: exact with separators below 100,000, else '123.5k'."""
    return f"{count:,}" if abs(count) < 100_000 else compact_number(count)
