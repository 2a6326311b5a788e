"""Pure input checks shared by every entry point: each returns the cleaned value or
raises ValidationError with a message a person can act on."""

from __future__ import annotations

import re
import unicodedata

from .errors import ValidationError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SECRET = re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$")


def clean_text(
    value: object, field: str, *, max_length: int, required: bool = True, multiline: bool = False
) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be text.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not text any database can store
        raise ValidationError(f"{field} contains characters that are not valid text.") from None
    text = unicodedata.normalize("NFC", value).strip()
    if multiline:
        text = text.replace("\r\n", "\n")
        if _CONTROL.search(text.replace("\n", "").replace("\t", "")):
            raise ValidationError(f"{field} contains control characters.")
    elif _CONTROL.search(text) or "\n" in text or "\t" in text:
        raise ValidationError(f"{field} contains control characters or line breaks.")
    if required and not text:
        raise ValidationError(f"{field} is required.")
    if len(text) > max_length:
        raise ValidationError(f"{field} is too long ({len(text)} characters; at most {max_length}).")
    refuse_card_data(text, field)
    return text


def refuse_card_data(text: str, field: str) -> None:
    """Card numbers and API secrets must never be stored: refuse free text holding one."""
    if _SECRET.search(text):
        raise ValidationError(f"{field} contains what looks like a secret API key; never paste keys here.")
    for match in _CARD_NUMBER.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_valid(digits):
            raise ValidationError(
                f"{field} contains what looks like a card number; never write card numbers into Orders Desk."
            )


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def clean_email(value: object) -> str:
    email = clean_text(value, "Email", max_length=320)
    if not _EMAIL.fullmatch(email):
        raise ValidationError(f"{email!r} is not an email address.")
    return email


def whole_number(value: object, field: str, *, minimum: int, maximum: int) -> int:
    """An int in [minimum, maximum]; accepts digit strings, refuses bools, floats and junk."""
    if isinstance(value, bool):
        raise ValidationError(f"{field} must be a whole number.")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            raise ValidationError(f"{field} must be a whole number, not {value[:40]!r}.")
        value = int(text)
    if not isinstance(value, int):
        raise ValidationError(f"{field} must be a whole number.")
    if not minimum <= value <= maximum:
        shown = value if abs(value) < 10**30 else ("a huge number" if value > 0 else "a huge negative number")
        raise ValidationError(f"{field} must be between {minimum} and {maximum}; got {shown}.")
    return value
