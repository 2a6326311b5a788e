"""OrderFilters.validate / parse: every bad field named, totals in one currency's units,
and the ageing filter (still Paid, paid more than N days ago)."""

from __future__ import annotations

import datetime as dt

import pytest

from orders_core.errors import ValidationError
from orders_core.queries import FilterError, OrderFilters
from orders_core.status import Status


def test_totals_are_read_in_the_chosen_currencys_own_units():
    usd = OrderFilters.parse(min_total="50", max_total="99.50", currency="USD")
    assert (usd.min_total, usd.max_total, usd.currency) == (5000, 9950, "usd")
    yen = OrderFilters.parse(min_total="50", currency="jpy")
    assert yen.min_total == 50  # ¥50, not ¥5,000


def test_a_total_without_a_currency_is_refused_at_that_field():
    filters, errors = OrderFilters.validate(min_total="50")
    assert filters is None and list(errors) == ["min_total"]
    assert errors["min_total"].startswith("Min total needs a currency")


def test_a_currency_alone_keeps_the_orders_in_that_currency():
    assert OrderFilters.parse(currency="eur").describe() == "all statuses, in EUR"


def test_every_bad_field_is_reported_at_once_and_nothing_is_built():
    filters, errors = OrderFilters.validate(
        status="shipped",
        created_from="2026-02-30",
        search="a\x00b",
        min_total="abc",
        max_total="-5",
        currency="usd",
        unfulfilled_days="soon",
    )
    assert filters is None
    assert set(errors) == {"status", "created_from", "search", "min_total", "max_total", "unfulfilled_days"}
    assert errors["min_total"].startswith("Min total: 'abc'")
    assert errors["max_total"].startswith("Max total: '-5' is negative")
    assert errors["created_from"].startswith("Created from: '2026-02-30'")


def test_ranges_that_disagree_are_refused_at_their_second_field():
    _, errors = OrderFilters.validate(
        created_from="2026-02-01", created_to="2026-01-01", min_total="50", max_total="10", currency="usd"
    )
    assert errors == {
        "created_to": "Created to 2026-01-01 is before Created from 2026-02-01.",
        "max_total": "Max total $10.00 is below Min total $50.00.",
    }


def test_parse_raises_the_first_problem_with_its_field():
    with pytest.raises(FilterError) as refused:
        OrderFilters.parse(min_total="1,000.505", currency="usd")
    assert refused.value.field == "min_total" and isinstance(refused.value, ValidationError)


def test_the_ageing_filter_is_a_number_of_days_and_is_described():
    filters = OrderFilters.parse(status="paid", unfulfilled_days="7")
    assert filters.unfulfilled_days == 7 and filters.status is Status.PAID
    assert filters.describe() == "status paid, unfulfilled for more than 7 days"
    assert not filters.counted_by_day
    now = dt.datetime(2026, 12, 1, 12, 0)
    assert filters.unfulfilled_cutoff(now) == dt.datetime(2026, 11, 24, 12, 0)
    for bad in ("-1", "1.5", "x", str(10**6)):
        _, errors = OrderFilters.validate(unfulfilled_days=bad)
        assert errors["unfulfilled_days"].startswith("Unfulfilled over (days)"), errors


def test_describe_names_totals_in_their_currency():
    filters = OrderFilters.parse(min_total="5000", max_total="9,000", currency="jpy")
    assert filters.describe() == "all statuses, total ≥ ¥5,000, total ≤ ¥9,000"
