"""Which orders an export job of a filtered selection writes, without a job item per order.

Asking for the export (`jobs.enqueue(db, actor, "export", filters=...)`) stores, on
the job row, its filters (as JSON) and the highest order id at that moment; nothing
else is frozen. The export then writes

    the orders with id <= that bound that match the filters when the export runs,

each as it stands when the export reads it. That is what "exact" means here, shown by
tests/integration/test_export_selection.py:
- an order placed after the export was asked for is never in the file (its id is
  above the bound), whatever it looks like;
- an order that stops matching meanwhile (a Paid order fulfilled while a "status
  paid" export waits) is left out, and one that starts matching is written: the file
  never shows an order in a state the filters exclude, which a snapshot of ids
  would (a "Paid orders" file listing Fulfilled ones);
- `total` on the job is the count at the time it was asked for; when the export
  finishes, `succeeded` and `total` are the rows actually written.
On PostgreSQL an order whose checkout was still committing when the export was
asked for (its id below the bound, not yet visible) is written if it matches.

While the export runs: it reads in ranges of order ids, each range (its orders and
their items) in one short read transaction of its own, so that no read holds the
SQLite WAL for the whole export (issue #13 §6). Each order is in exactly one range:
it is written once, in id order, with all its items, as it stood when its range was
read, and only if it matched the filters then. An order that changes status while
the export runs is written as it was before the change if its range had been read
already, as it is after if not: the file is exact order by order, not one instant of
the whole table (two orders changed together by one bulk chunk can appear one
before and one after the change if a range boundary falls between them).

A listed selection (order numbers ticked on the page, or given to the CLI) keeps
its job items, one per order, as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import typing
from decimal import Decimal

from sqlalchemy import func, select, update

from .queries import OrderFilters
from .schema import jobs, orders
from .status import Status


def filters_to_json(filters: OrderFilters) -> str:
    """The filters as JSON text that `filters_from_json` reads back to an equal value."""
    values = {}
    for field in dataclasses.fields(filters):
        value = getattr(filters, field.name)
        if value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        values[field.name] = value
    return json.dumps(values, sort_keys=True)


def filters_from_json(text: str) -> OrderFilters:
    """The OrderFilters stored by `filters_to_json`: its values as they were (already
    validated when the job was asked for), not parsed again from user input."""
    hints = typing.get_type_hints(OrderFilters)
    values = {}
    for name, value in json.loads(text or "{}").items():
        kinds = typing.get_args(hints[name]) or (hints[name],)
        for kind in (Status, dt.datetime, dt.date, Decimal):
            if kind in kinds and value is not None:
                value = kind.fromisoformat(value) if kind in (dt.datetime, dt.date) else kind(value)
                break
        values[name] = value
    return OrderFilters(**values)


def freeze_filtered_export(conn, job_id: int, filters: OrderFilters) -> int:
    """Record on job `job_id` its filters and the current highest order id; the number
    of orders the selection has now (in the caller's transaction)."""
    bound = conn.execute(select(func.max(orders.c.id))).scalar_one() or 0
    # Counted without "id <= bound": the same orders in SQLite's write transaction (and
    # to within a checkout committing meanwhile on PostgreSQL, corrected when the
    # export ends), and a range of the primary key would walk the whole table (6.6 s
    # at 1M orders against 0.3 s for a covering index).
    where = filters.conditions(dialect=conn.dialect.name)
    total = conn.execute(select(func.count()).select_from(orders).where(*where)).scalar_one()
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(selection_filters=filters_to_json(filters), selection_max_id=bound)
    )
    return int(total)


def is_filtered_export(job) -> bool:
    """Whether a job row is an export frozen as filters and a bound (no job items)."""
    return getattr(job, "selection_max_id", None) is not None


__all__ = ["filters_from_json", "filters_to_json", "freeze_filtered_export", "is_filtered_export"]
