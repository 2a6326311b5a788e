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


# -- amounts typed by people -------------------------------------------------------------------
MAX_TYPED_AMOUNT = 10**12  # minor units; far above any order, below any integer overflow
_TYPED = re.compile(r"^(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<fraction>[0-9]+))?$")


class AmountError(ValueError):
    """Typed text that is not an amount of its currency; the message names the field."""


def parse_amount(text: object, currency: str, field: str = "Amount") -> int | None:
    """Text typed in `currency`'s own units → minor units with its exponent, exactly.

    '19.99' usd → 1999, '5000' jpy → 5000, '1.005' kwd → 1005, '1,000' usd → 100000;
    '' → None. Refuses anything else with a message naming `field`: letters, signs,
    exponents, misplaced thousands separators, more decimals than the currency has, and
    amounts above MAX_TYPED_AMOUNT minor units."""
    if text is None:
        return None
    raw = str(text).strip()
    if raw == "":
        return None
    code = normalize_currency(currency)
    places = exponent(code)
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    if raw.startswith("-"):
        raise AmountError(f"{field}: {shown!r} is negative; a total is 0 or more.")
    match = _TYPED.fullmatch(raw)
    if match is None:
        example = "5000" if places == 0 else "25 or 19.99" if places == 2 else "25 or 1.250"
        raise AmountError(f"{field}: {shown!r} is not an amount; type a number like {example}.")
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > places:
        unit = "whole units, without decimals" if places == 0 else f"at most {places} decimals"
        raise AmountError(f"{field}: {shown!r} has too many decimals; {code.upper()} amounts take {unit}.")
    digits = match["whole"].replace(",", "").lstrip("0")
    # Counted before int(): a 5,000-digit number is refused, not converted.
    minor = (
        MAX_TYPED_AMOUNT + 1
        if len(digits) > 18
        else int(digits or "0") * 10**places + (int(fraction.ljust(places, "0")) if places else 0)
    )
    if minor > MAX_TYPED_AMOUNT:
        largest = f"{to_major(MAX_TYPED_AMOUNT, code):,}"
        raise AmountError(f"{field}: {shown!r} is out of range; at most {largest} {code.upper()}.")
    return minor


def format_amount_input(amount: int | None, currency: str) -> str:
    """The text parse_amount reads back: 1999 usd → '19.99', 5000 usd → '50', 5000 jpy →
    '5000' (no symbol, no thousands separators: for a form field or a URL)."""
    if amount is None:
        return ""
    places = exponent(currency)
    whole, fraction = divmod(int(amount), 10**places)
    return str(whole) if fraction == 0 else f"{whole}.{fraction:0{places}d}"
