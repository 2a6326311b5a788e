"""The export's shipping_address cell in SQL, from the layouts of orders_core/addresses.py,
so a CSV writes an address exactly as the order page does (address_one_line), in the
database, for every row of a million-order export."""

from __future__ import annotations

from sqlalchemy import case, func, literal_column

from .addresses import DEFAULT_LAYOUT, FIELDS, LAYOUTS, Layout

_EMPTY = literal_column("''")


def _joined(separator: str, parts: list):
    """concat_ws over parts that are NULL when empty; NULL when every part is."""
    if len(parts) == 1:
        return parts[0]
    return func.nullif(func.concat_ws(literal_column(f"'{separator}'"), *parts), _EMPTY)


def _layout_sql(layout: Layout, columns: dict, separator: str):
    lines = []
    for line in layout:
        groups = [_joined(" ", [func.nullif(columns[f], _EMPTY) for f in group]) for group in line]
        lines.append(_joined(", ", groups))
    return _joined(separator, lines)


def address_one_line_sql(columns: dict, *, separator: str = ", "):
    """`columns` maps each of addresses.FIELDS to its SQL column; the value is the
    address's lines joined with `separator`, or NULL for an order with no address."""
    missing = set(FIELDS) - set(columns)
    if missing:
        raise ValueError(f"address columns missing: {sorted(missing)}")
    by_layout: dict[Layout, list[str]] = {}
    for country, layout in LAYOUTS.items():
        if layout != DEFAULT_LAYOUT:
            by_layout.setdefault(layout, []).append(country)
    whens = [
        (columns["country"].in_(sorted(countries)), _layout_sql(layout, columns, separator))
        for layout, countries in by_layout.items()
    ]
    return case(*whens, else_=_layout_sql(DEFAULT_LAYOUT, columns, separator))
