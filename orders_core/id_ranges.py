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


__all__ = ["RANGE_HI", "RANGE_IDS", "RANGE_LO", "range_statement"]
