"""What every CSV the product writes must escape, written out here rather than read
from orders_core.csv_cells: a list derived from the code under test would agree with
any mistake in it."""

from __future__ import annotations

# The first characters a spreadsheet acts on (OWASP CSV injection), and the escape
# itself, which must be escaped too so that the escape can be undone.
DANGEROUS_STARTS = ("=", "+", "-", "@", "'", "\t", "\r")
HOSTILE_TEXTS = tuple(f'{start}HYPERLINK("http://evil.example","click")' for start in DANGEROUS_STARTS)


def escaped(text: str) -> str:
    return "'" + text
