"""An export job stores its filters as JSON and reads back the very same OrderFilters."""

from __future__ import annotations

import dataclasses
import datetime as dt

from orders_core.export_selection import filters_from_json, filters_to_json
from orders_core.queries import OrderFilters
from orders_core.status import Status


def test_every_filter_value_survives_the_round_trip_through_json():
    values = {
        field.name: value
        for field in dataclasses.fields(OrderFilters)
        if (value := EXAMPLES.get(field.name)) is not None
    }
    filters = OrderFilters(**values)
    assert filters_from_json(filters_to_json(filters)) == filters


def test_no_filters_is_every_order():
    assert filters_from_json(filters_to_json(OrderFilters())) == OrderFilters()


EXAMPLES = {
    "status": Status.PAID,
    "created_from": dt.date(2026, 1, 2),
    "created_to": dt.date(2026, 3, 4),
    "search": "Ada 'Lovelace' %_",
    "sku": "BOX-USD",
    "min_total": 1999,
    "max_total": 250000,
    "currency": "usd",
    "unfulfilled_days": 3,
    "disputed": True,
    "needs_attention": True,
}
