"""Passwords are stored only as salted argon2id hashes."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 copes with more; a limit keeps hostile input cheap
# A hash no password matches: accounts that cannot sign in (generated demo customers).
LOCKED = "!locked"

_hasher = PasswordHasher()  # argon2id with the library's current recommended costs


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if stored_hash == LOCKED or not password or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_new_password(password: str) -> str | None:
    """None when acceptable, else the reason."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return f"A password needs at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"A password can have at most {MAX_LENGTH} characters."
    return None
