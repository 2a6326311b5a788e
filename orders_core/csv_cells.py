"""Cells that a spreadsheet shows as text: the one escape of every CSV the product
writes (the orders export, the analytics tables, a job's failures).

Formula injection (OWASP "CSV Injection"): a text cell that starts with =, +, -, @,
a tab or a carriage return gets a single quote (') in front, so a spreadsheet shows
it instead of evaluating it. A cell that starts with the quote itself gets one more,
so the escape can always be undone (drop the first character of a cell that starts
with ') and a spreadsheet, which hides a leading quote, shows the value as it is.
Numbers are never escaped: -1 stays a number.

Imports nothing: the export's helper process uses the SQL form, the pages the rest.
"""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
ESCAPED_PREFIXES = FORMULA_PREFIXES + (ESCAPE,)


def spreadsheet_safe(value):
    """`value` with the escape in front if it is text a spreadsheet could run;
    anything that is not text comes back as it is."""
    if isinstance(value, str) and value.startswith(ESCAPED_PREFIXES):
        return ESCAPE + value
    return value


def spreadsheet_safe_sql(expression: str) -> str:
    """The same rule as a DuckDB SQL expression over the text `expression`
    (ascii(x): the code point of x's first character)."""
    codes = ", ".join(str(ord(c)) for c in ESCAPED_PREFIXES)
    quoted_escape = "'" + ESCAPE.replace("'", "''") + "'"
    return (
        f"CASE WHEN ascii({expression}) IN ({codes}) "
        f"THEN {quoted_escape} || {expression} ELSE {expression} END"
    )


def csv_bytes(frame) -> bytes:
    """A pandas DataFrame as UTF-8 CSV (no index), its text cells spreadsheet-safe."""
    safe = frame.copy()
    for column in safe.select_dtypes(include=["object", "string"]).columns:
        safe[column] = safe[column].map(spreadsheet_safe)
    return safe.to_csv(index=False).encode("utf-8")
