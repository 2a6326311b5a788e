import pytest

from orders_core.checkout import check_card_token
from orders_core.errors import InvalidToken
from orders_core.order_numbers import format_order_number, parse_order_number


@pytest.mark.parametrize(
    "pasted,code",
    [
        ("sk_live_51HxYzABCDEF", "secret_key_as_token"),
        ("rk_test_123abc", "secret_key_as_token"),
        ("whsec_abc123", "secret_key_as_token"),
        ("4242 4242 4242 4242", "card_number_as_token"),
        ("4242424242424242", "card_number_as_token"),
        ("", "token_missing"),
        (None, "token_missing"),
        ("tok_visa'; DROP TABLE orders;--", "token_malformed"),
        ("tok_" + "a" * 300, "token_malformed"),
        ("tok_vis\u0430", "token_malformed"),
    ],
)
def test_anything_but_a_card_token_is_refused_before_reaching_the_gateway(pasted, code):
    with pytest.raises(InvalidToken) as refused:
        check_card_token(pasted)
    assert refused.value.code == code
    if pasted and len(pasted) > 6:
        assert pasted not in str(refused.value)  # never echo a key or a card number


def test_order_numbers_round_trip():
    assert format_order_number(123) == "ORD-000123"
    assert format_order_number(1234567) == "ORD-1234567"
    for text in ("ORD-000123", "ord-123", "123", " ORD-000123 "):
        assert parse_order_number(text) == 123
    for text in ("ORD-", "ORD-12a", "", "1; DROP", "-1"):
        assert parse_order_number(text) is None
