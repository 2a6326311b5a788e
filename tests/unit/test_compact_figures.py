"""Dashboard figures are short enough for a tile and say roughly the same amount."""

import pytest

from orders_core.compact_figures import compact_count, compact_money, compact_number


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (21_412_345, "usd", "$214.1k"),
        (999_999, "usd", "$9,999.99"),  # below 10,000 the amount is exact
        (1_000_000, "usd", "$10k"),
        (99_995_000, "usd", "$1M"),  # 999.95k rounds up into millions, never "1000k"
        (123_456_789_00, "eur", "€123.5M"),
        (5_000_000, "jpy", "¥5M"),  # zero-decimal currency: 5,000,000 yen
        (12_345_678, "chf", "CHF 123.5k"),
        (-21_412_345, "usd", "-$214.1k"),
    ],
)
def test_money_is_compact_above_ten_thousand_and_exact_below(amount, currency, shown):
    assert compact_money(amount, currency) == shown


def test_numbers_round_half_up_to_one_decimal_without_a_trailing_zero():
    assert [compact_number(n) for n in (999, 1_049, 1_050, 2_000, 1_250_000)] == [
        "999",
        "1k",
        "1.1k",
        "2k",
        "1.3M",
    ]


def test_counts_stay_exact_below_a_hundred_thousand():
    assert (compact_count(99_999), compact_count(123_456)) == ("99,999", "123.5k")
