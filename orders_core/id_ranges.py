"""Reading a large selection in ranges of ids, each range its own short read transaction.

A read that lasts as long as a million-order export or report keeps SQLite from
resetting its WAL (every page written meanwhile stays in it: issue #13 §6) and holds
one PostgreSQL snapshot for its length. So the export and analytics' ADBC reads run
their statement once per range of ids, lo < id <= hi, with RANGE_LO and RANGE_HI as
its bind parameters, and end the read transaction after each range.

    sql, params, slots = range_statement(dialect, query)   # query uses RANGE_LO / RANGE_HI
    export_engine.bind_range(params, slots, lo, hi)         # the params of one range
"""

from __future__ import annotations

from sqlalchemy import BigInteger, bindparam

RANGE_LO = bindparam("range_lo", 0, type_=BigInteger)
RANGE_HI = bindparam("range_hi", 0, type_=BigInteger)
RANGE_IDS = 65_536  # ids a range; one range is read in a fraction of a second


# A filtered read is split into at most this many ranges. A filter's subqueries and
# index walks (the FTS match of a search, a SKU's orders, the status index) are not
# limited by the range, so the database evaluates them in full for every range's
# statement: measured at 1M orders, 0.1-0.7 s each under load for a status or a search,
# several seconds for a SKU. Ranges of the whole table (no filter) cost nothing extra.
FILTERED_RANGES = 4


def range_size(low: int, high: int, *, filtered: bool, size: int = RANGE_IDS) -> int:
    """Ids per range for reading low < id <= high: `size`, or for a filtered read
    enough to need no more than FILTERED_RANGES ranges."""
    if not filtered:
        return size
    return max(size, -(-max(0, high - low) // FILTERED_RANGES))


def range_statement(dialect, query, convert=lambda value: value) -> tuple[str, list, dict]:
    """(sql, positional params, slots) for a driver outside SQLAlchemy (ADBC): slots
    = {"lo": [index, ...], "hi": [index, ...]}, where the range's bounds go."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    names = list(compiled.positiontup or ())
    slots = {
        "lo": [n for n, name in enumerate(names) if name == RANGE_LO.key],
        "hi": [n for n, name in enumerate(names) if name == RANGE_HI.key],
    }
    return str(compiled), [convert(values[name]) for name in names], slots


__all__ = ["FILTERED_RANGES", "RANGE_HI", "RANGE_IDS", "RANGE_LO", "range_size", "range_statement"]
