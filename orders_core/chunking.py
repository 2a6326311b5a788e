"""Splitting a list into runs of at most `size` items, and how long an id list may be.

Set-based SQL sends ids as `IN (...)` lists, one bound variable per id; SQLite refuses
a statement with more variables than its limit, so long lists go in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

ID_LIST_LIMIT = 900  # ids per IN (...) list: under SQLite's variable limit on every version


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    """The items in order, `size` at a time; the last chunk holds what is left."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
