"""Money as integer minor units plus an ISO 4217 currency code, never floats."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

# Stripe's zero-decimal currencies; everything else we sell in has two decimals.
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
_CURRENCY = re.compile(r"^[a-z]{3}$")
MAX_AMOUNT = 99_999_999  # Stripe's ceiling for one charge, in minor units


def normalize_currency(code: str) -> str:
    """Lower-case ISO 4217 code, as Stripe writes it; ValueError otherwise."""
    value = (code or "").strip().lower()
    if not _CURRENCY.fullmatch(value):
        raise ValueError(f"{code!r} is not a three-letter ISO 4217 currency code")
    return value


def exponent(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def to_major(amount: int, currency: str) -> Decimal:
    """19.99 for 1999 usd; exact, as a Decimal."""
    return Decimal(int(amount)).scaleb(-exponent(currency))


@dataclasses.dataclass(frozen=True, order=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money amounts are integers in minor units")
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        return Money(self.amount * int(quantity), self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"Cannot combine {self.currency} and {other.currency}")

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def format_money(amount: int, currency: str) -> str:
    """'$39.98', '€5.00', '¥1200', 'CHF 12.50'."""
    currency = currency.lower()
    places = exponent(currency)
    major = to_major(abs(amount), currency)
    number = f"{major:,.{places}f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{currency.upper()} {number}"
