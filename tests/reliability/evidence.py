"""What the reliability tests compare against: a checksum of every table's contents,
and a scanner for secrets and card numbers in text, logs and the database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator

from sqlalchemy import MetaData, select

# -- checksums ------------------------------------------------------------------------

_reflected: dict[str, MetaData] = {}


def _tables(db):
    """Every table the database really has (reflected, so nothing outside our models
    escapes the checksum), cached per database."""
    meta = _reflected.get(db.url)
    if meta is None:
        meta = MetaData()
        meta.reflect(bind=db.engine)
        _reflected[db.url] = meta
    return meta.sorted_tables


def _canonical(value) -> str:
    """One spelling per value on both backends (SQLite hands back ints for booleans)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return repr(value)


def table_checksums(db) -> dict[str, str]:
    """{table: "rows:sha256"} over the full contents of every table, rows in primary
    key order. Equal before and after a call means the call changed nothing at all."""
    sums = {}
    with db.read() as conn:
        for table in _tables(db):
            order = list(table.primary_key.columns) or list(table.columns)
            digest = hashlib.sha256()
            count = 0
            for row in conn.execute(select(table).order_by(*order)):
                digest.update("\x1f".join(_canonical(v) for v in row).encode("utf-8", "replace"))
                digest.update(b"\x1e")
                count += 1
            sums[table.name] = f"{count}:{digest.hexdigest()[:20]}"
    return sums


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


# -- secrets and card numbers --------------------------------------------------------

# Stripe secret and restricted keys, and webhook signing secrets.
_SECRET = re.compile(
    r"(?<![A-Za-z0-9])(?:sk|rk)_(?:live|test)_[A-Za-z0-9_]{4,}"
    r"|(?<![A-Za-z0-9])whsec_[A-Za-z0-9]{8,}"
)
# A card number: a bare run of 13-19 digits, or 4-digit-led groups split by one space or
# dash (4-4-4-4, 4-6-5...). Letters right next to it mean it is part of an id.
_CARDISH = re.compile(r"(?<![A-Za-z0-9])(?:\d{13,19}|\d{4}(?:[ -]\d{4,6}){2,4})(?![A-Za-z0-9])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclasses.dataclass(frozen=True)
class Finding:
    where: str
    kind: str  # "secret" or "card number"
    text: str  # the match itself, masked: never print a secret whole

    def __str__(self) -> str:
        return f"{self.kind} {self.text} in {self.where}"


def _mask(text: str) -> str:
    return text[:6] + "…" + text[-2:] if len(text) > 10 else text[:3] + "…"


def scan_text(text: str, where: str) -> list[Finding]:
    found = [Finding(where, "secret", _mask(m.group())) for m in _SECRET.finditer(text)]
    for match in _CARDISH.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.append(Finding(where, "card number", _mask(digits)))
    return found


# FTS5's own tables behind the customer search index (migration 0006): segment ids and
# blobs derived from the orders' emails and names, which are scanned where they live.
_SEARCH_INDEX_INTERNALS = {f"orders_search_{part}" for part in ("data", "idx", "docsize", "config")}


def scan_database(db) -> list[Finding]:
    """Every text and number in every table of the database."""
    found: list[Finding] = []
    with db.read() as conn:
        for table in _tables(db):
            if table.name in _SEARCH_INDEX_INTERNALS:
                continue
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row):
                    if isinstance(value, (str, int)) and not isinstance(value, bool):
                        found += scan_text(str(value), f"{table.name}.{column.name}")
    return found


class RecordingHandler(logging.Handler):
    """Keeps every record's full text: message, arguments and traceback."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.texts: list[tuple[str, str]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception as error:  # a record that cannot format is still scanned raw
            text = f"{record.msg!r} {record.args!r} ({error})"
        self.texts.append((record.name, text))

    def findings(self) -> list[Finding]:
        return [f for name, text in self.texts for f in scan_text(text, f"log record of {name}")]


def iter_chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def scan_error(error: BaseException) -> list[Finding]:
    """An exception as a caller would show or log it: message, repr and causes."""
    texts: Iterable[str] = [f"{e!s} {e!r}" for e in iter_chain(error)]
    return [f for t in texts for f in scan_text(t, f"{type(error).__name__}")]
