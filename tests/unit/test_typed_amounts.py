"""money.parse_amount: what a person types in a currency's own units, as minor units with
that currency's exponent, for the order filters of the page, its URL and the CLI."""

from __future__ import annotations

import pytest

from orders_core.money import (
    MAX_TYPED_AMOUNT,
    THREE_DECIMAL,
    ZERO_DECIMAL,
    AmountError,
    exponent,
    format_amount_input,
    parse_amount,
)


@pytest.mark.parametrize(
    "text, currency, minor",
    [
        ("50", "usd", 5000),
        ("19.99", "usd", 1999),
        ("19.9", "eur", 1990),
        ("0", "gbp", 0),
        ("0.01", "usd", 1),
        ("1,000", "usd", 100000),
        ("1,000.50", "usd", 100050),
        ("12,345,678.90", "usd", 1234567890),
        ("  25  ", "usd", 2500),
        ("5000", "jpy", 5000),
        ("5,000", "jpy", 5000),
        ("1.0", "jpy", 1),  # trailing zeros are not decimals that matter
        ("1.005", "kwd", 1005),
        ("1,000.505", "kwd", 1000505),
        ("7.5", "bhd", 7500),
        ("50", "USD", 5000),
    ],
)
def test_typed_text_becomes_minor_units_with_the_currencys_exponent(text, currency, minor):
    assert parse_amount(text, currency, "Min total") == minor


@pytest.mark.parametrize(
    "currencies, places",
    [(sorted(ZERO_DECIMAL), 0), (["usd", "eur", "gbp", "cad", "chf"], 2), (sorted(THREE_DECIMAL), 3)],
    ids=["zero-decimal", "two-decimal", "three-decimal"],
)
def test_every_exponent_takes_exactly_its_number_of_decimals(currencies, places):
    for currency in currencies:
        assert exponent(currency) == places
        assert parse_amount("12", currency) == 12 * 10**places
        if places:
            assert parse_amount("1." + "1" * places, currency) == int("1" + "1" * places)
        with pytest.raises(AmountError, match="too many decimals"):
            parse_amount("1." + "1" * (places + 1), currency)


@pytest.mark.parametrize(
    "text, currency, wording",
    [
        ("abc", "usd", "is not an amount"),
        ("-5", "usd", "is negative"),
        ("-0.01", "usd", "is negative"),
        ("+5", "usd", "is not an amount"),
        ("1,000.505", "usd", "too many decimals; USD amounts take at most 2 decimals"),
        ("1.5", "jpy", "too many decimals; JPY amounts take whole units"),
        ("1e9", "usd", "is not an amount"),
        ("NaN", "usd", "is not an amount"),
        ("Infinity", "usd", "is not an amount"),
        ("0x10", "usd", "is not an amount"),
        ("1,00", "usd", "is not an amount"),  # a misplaced thousands separator
        ("1,0000", "usd", "is not an amount"),
        (",100", "usd", "is not an amount"),
        (".5", "usd", "is not an amount"),
        ("5.", "usd", "is not an amount"),
        ("1 000", "usd", "is not an amount"),
        ("1.000,50", "eur", "is not an amount"),
        ("١٢", "usd", "is not an amount"),  # Arabic-Indic digits: Decimal would take them
        ("12\x00", "usd", "is not an amount"),
        ("$5", "usd", "is not an amount"),
        ("5; DROP TABLE orders", "usd", "is not an amount"),
        ("9" * 5000, "usd", "out of range"),
        ("10000000000.01", "usd", "out of range"),
    ],
)
def test_hostile_or_malformed_text_is_refused_naming_the_field(text, currency, wording):
    with pytest.raises(AmountError) as refused:
        parse_amount(text, currency, "Min total")
    message = str(refused.value)
    assert message.startswith("Min total: ") and wording in message
    assert len(message) < 200  # a huge input is not echoed back whole


def test_the_largest_typed_amount_is_accepted_and_one_more_is_not():
    assert parse_amount(format_amount_input(MAX_TYPED_AMOUNT, "usd"), "usd") == MAX_TYPED_AMOUNT
    with pytest.raises(AmountError, match="out of range"):
        parse_amount(format_amount_input(MAX_TYPED_AMOUNT + 1, "usd"), "usd")


def test_nothing_typed_is_no_amount():
    assert parse_amount("", "usd") is None
    assert parse_amount("   ", "usd") is None
    assert parse_amount(None, "usd") is None


def test_an_unknown_currency_code_is_refused():
    with pytest.raises(ValueError, match="currency code"):
        parse_amount("5", "dollars")


@pytest.mark.parametrize(
    "minor, currency, text",
    [
        (5000, "usd", "50"),
        (1999, "usd", "19.99"),
        (1990, "usd", "19.90"),
        (5000, "jpy", "5000"),
        (1005, "kwd", "1.005"),
    ],
)
def test_the_form_and_url_text_reads_back_to_the_same_amount(minor, currency, text):
    assert format_amount_input(minor, currency) == text
    assert parse_amount(text, currency) == minor
