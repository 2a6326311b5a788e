from decimal import Decimal

import pytest

from orders_core.money import Money, format_money, normalize_currency, to_major


def test_money_is_integer_minor_units_and_refuses_floats():
    with pytest.raises(TypeError):
        Money(19.99, "usd")
    with pytest.raises(TypeError):
        Money(True, "usd")


def test_amounts_in_different_currencies_do_not_mix():
    with pytest.raises(ValueError):
        Money(100, "usd") + Money(100, "eur")
    assert Money(1999, "usd") * 2 + Money(2, "USD") == Money(4000, "usd")


@pytest.mark.parametrize(
    "amount,currency,text",
    [
        (3998, "usd", "$39.98"),
        (500, "eur", "€5.00"),
        (1200, "jpy", "¥1,200"),
        (123456, "gbp", "£1,234.56"),
        (1250, "chf", "CHF 12.50"),
        (-1999, "usd", "-$19.99"),
        (1000, "kwd", "KWD 1.000"),
    ],
)
def test_formatting_respects_each_currencys_decimal_places(amount, currency, text):
    assert format_money(amount, currency) == text


def test_major_units_are_exact_decimals():
    assert to_major(1999, "usd") == Decimal("19.99")
    assert to_major(1200, "jpy") == Decimal("1200")


@pytest.mark.parametrize("bad", ["", "us", "usdd", "12a", None, "u$d"])
def test_a_currency_must_be_a_three_letter_code(bad):
    with pytest.raises(ValueError):
        normalize_currency(bad)
