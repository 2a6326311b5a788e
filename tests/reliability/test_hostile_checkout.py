"""Promise 3 (checkout): hostile input changes nothing and explains itself.

Every case below is refused with an OrdersError whose message a person can act on
(short, no traceback, no control characters, never the secret or the huge input
repeated back), and the database is byte-for-byte what it was: the checksum covers
the contents of every table, not just row counts. A fuzz test then throws arbitrary
values at every checkout parameter.
"""

from __future__ import annotations

import decimal
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from orders_core.checkout import place_order
from orders_core.customers import AddressInput
from orders_core.errors import AuthenticationError, InvalidToken, OrdersError, PaymentError, ValidationError
from orders_core.schema import orders, payments
from tests.reliability.evidence import changed_tables, scan_text, table_checksums
from tests.reliability.shop import HOME

# Codes of a token refused before anything is stored (the gateway's own refusals come
# after the order exists, and are recorded on it by design).
REFUSED_BEFORE_STORING = {"token_missing", "secret_key_as_token", "card_number_as_token", "token_malformed"}
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
HUGE = "Ω" * 100_000


def assert_explains_itself(error: BaseException, *hostile) -> None:
    """A refusal a support agent can read out: an OrdersError, one short message."""
    assert isinstance(error, OrdersError), f"not a business refusal: {type(error).__name__}: {error}"
    message = str(error)
    assert message.strip(), "an empty message"
    assert len(message) <= 300, f"a {len(message)}-character message"
    assert "Traceback" not in message and 'File "' not in message
    assert not _RAW_CONTROL.search(message), f"raw control characters in {message!r}"
    assert scan_text(message, "message") == [], f"a secret or card number repeated in {message!r}"
    for value in hostile:
        if isinstance(value, str) and len(value) > 80:
            assert value[:80] not in message, "the huge input is repeated back"


def refuse(shop, expected: type[OrdersError], fragment: str, **kwargs):
    """Checkout with `kwargs`; it must be refused as `expected`, saying `fragment`,
    with every table unchanged."""
    kwargs.setdefault("items", [("PASS-USD", 1)])
    kwargs.setdefault("token", "tok_visa")
    customer = kwargs.pop("customer", shop.customer)
    before = table_checksums(shop.db)
    with pytest.raises(OrdersError) as refused:
        place_order(shop.db, customer, **kwargs)
    assert isinstance(refused.value, expected), f"{type(refused.value).__name__}: {refused.value}"
    assert fragment.lower() in str(refused.value).lower(), str(refused.value)
    assert_explains_itself(refused.value, *kwargs.values())
    after = table_checksums(shop.db)
    assert after == before, f"the refusal changed {changed_tables(before, after)}"
    return refused.value


def address(**changes) -> AddressInput:
    fields = {
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    } | changes
    return AddressInput(**fields)


# -- amounts and quantities ---------------------------------------------------------

QUANTITIES = [
    ("zero", 0, "between 1 and 999"),
    ("negative", -1, "between 1 and 999"),
    ("over the limit", 1000, "between 1 and 999"),
    ("enormous", 10**30, "between 1 and 999"),
    ("fraction", 1.5, "whole number"),
    ("float that is whole", 2.0, "whole number"),
    ("not a number", float("nan"), "whole number"),
    ("infinity", float("inf"), "whole number"),
    ("decimal", decimal.Decimal("2"), "whole number"),
    ("words", "two", "whole number"),
    ("exponent", "1e3", "whole number"),
    ("empty text", "", "whole number"),
    ("none", None, "whole number"),
    ("boolean", True, "whole number"),
    ("a list", [1], "whole number"),
    ("huge digit string", "9" * 5000, "whole number"),
]


def refuse_quantity(shop, quantity, fragment):
    refuse(shop, ValidationError, fragment, items=[("PASS-USD", quantity)])


@pytest.mark.parametrize("case,quantity,fragment", QUANTITIES, ids=[c[0] for c in QUANTITIES])
def test_a_quantity_out_of_range_or_not_a_number_is_refused(sqlite_shop, case, quantity, fragment):
    refuse_quantity(sqlite_shop, quantity, fragment)


def test_lines_of_one_sku_that_add_up_past_the_limit_are_refused(shop):
    refuse(shop, ValidationError, "between 1 and 999", items=[("PASS-USD", 500), ("PASS-USD", 500)])


def test_a_total_above_stripes_ceiling_is_refused(shop):
    refuse(shop, ValidationError, "order total must be between", items=[("GOLD-USD", 10)])


def test_a_total_of_nothing_is_refused(shop):
    refuse(shop, ValidationError, "order total must be between", items=[("FREE-USD", 3)])


@pytest.mark.parametrize("field", ["quantity", "address_id"])
def test_an_integer_too_long_to_print_is_refused_like_any_other(shop, field):
    huge = 10**5000
    if field == "quantity":
        refuse(shop, ValidationError, "between 1 and 999", items=[("PASS-USD", huge)])
    else:
        refuse(shop, ValidationError, "between", items=[("BOX-USD", 1)], address_id=huge)


# -- the cart itself ------------------------------------------------------------------

CARTS = [
    ("no items", [], "at least one item"),
    ("items as a mapping", {"PASS-USD": 1}, "must be a list"),
    ("items as text", "PASS-USD", "must be a list"),
    ("items as a number", 5, "must be a list"),
    ("a line that is not a pair", [("PASS-USD",)], "SKU code and a quantity"),
    ("a line with three parts", [("PASS-USD", 1, 2)], "SKU code and a quantity"),
    ("a line that is nothing", [None], "SKU code and a quantity"),
    ("51 lines", [(f"PASS-{i}", 1) for i in range(51)], "at most 50 lines"),
    ("a SKU that is a number", [(123, 1)], "must be text"),
    ("an empty SKU", [("", 1)], "required"),
    ("a huge SKU", [(HUGE, 1)], "too long"),
    ("a SKU with a NUL", [("PASS-USD\x00", 1)], "control characters"),
    ("a SKU with a line break", [("PASS\nUSD", 1)], "control characters"),
    ("a SKU with an escape sequence", [("\x1b[31mPASS-USD", 1)], "control characters"),
    ("a Cyrillic look-alike SKU", [("РАSS-USD", 1)], "Unknown SKU"),
    ("a SKU with a right-to-left override", [("\u202eDSU-SSAP", 1)], "Unknown SKU"),
    ("an emoji SKU", [("💳-USD", 1)], "Unknown SKU"),
    ("SQL in the SKU", [("PASS-USD' OR '1'='1", 1)], "Unknown SKU"),
    ("a LIKE wildcard SKU", [("PASS-%", 1)], "Unknown SKU"),
    ("a retired SKU", [("MUG-OLD", 1)], "no longer for sale"),
    ("two currencies", [("PASS-USD", 1), ("PASS-EUR", 1)], "one currency"),
]


def refuse_cart(shop, items, fragment):
    refuse(shop, ValidationError, fragment, items=items, address_id=shop.address_id)


@pytest.mark.parametrize("case,items,fragment", CARTS, ids=[c[0] for c in CARTS])
def test_a_malformed_or_hostile_cart_is_refused(sqlite_shop, case, items, fragment):
    refuse_cart(sqlite_shop, items, fragment)


@pytest.mark.parametrize("where", ["SKU code", "address line"])
def test_a_lone_surrogate_is_refused_like_any_other_malformed_text(shop, where):
    if where == "SKU code":
        refuse(shop, ValidationError, "SKU", items=[("PASS-\ud800", 1)])
    else:
        refuse(
            shop,
            ValidationError,
            "Address",
            items=[("BOX-USD", 1)],
            address=address(line1="12 St James\ud800s Square"),
        )


# -- the address -------------------------------------------------------------------

ADDRESSES = [
    ("missing for goods that ship", {}, "shipping address is required"),
    ("another customer's saved address", {"address_id": "other"}, "not one of your saved addresses"),
    ("an address id that does not exist", {"address_id": 999_999}, "not one of your saved addresses"),
    ("address id zero", {"address_id": 0}, "between 1 and"),
    ("a negative address id", {"address_id": -4}, "between 1 and"),
    ("SQL as the address id", {"address_id": "1 OR 1=1"}, "whole number"),
    ("a boolean address id", {"address_id": True}, "whole number"),
    ("a huge address line", {"address": address(line1=HUGE)}, "too long"),
    ("a NUL in the city", {"address": address(city="Lon\x00don")}, "control characters"),
    ("a line break in the name", {"address": address(name="Ada\r\nBcc: x@evil.test")}, "control characters"),
    ("a country that is not a code", {"address": address(country="Narnia")}, "two-letter"),
    ("a full-width country code", {"address": address(country="ＧＢ")}, "two-letter"),
    ("a number as the city", {"address": address(city=12345)}, "must be text"),
    ("an empty postal code", {"address": address(postal_code="   ")}, "required"),
]


def refuse_address(shop, kwargs, fragment):
    if kwargs.get("address_id") == "other":
        kwargs = {"address_id": shop.other_address_id}
    refuse(shop, ValidationError, fragment, items=[("BOX-USD", 1)], **kwargs)


@pytest.mark.parametrize("case,kwargs,fragment", ADDRESSES, ids=[c[0] for c in ADDRESSES])
def test_a_hostile_address_is_refused(sqlite_shop, case, kwargs, fragment):
    refuse_address(sqlite_shop, kwargs, fragment)


# -- the card token ------------------------------------------------------------------

TOKENS = [
    ("a live secret key", "sk_live_51HqDxYKZf0fRpLk2nQ8s9TvWx", "API key, not a card token"),
    ("a test secret key", "sk_test_orders_desk", "API key, not a card token"),
    ("a restricted key", "rk_live_51HqDxYKZf0fRpLk2nQ8s9", "API key, not a card token"),
    ("a webhook secret", "whsec_9f8e7d6c5b4a39281706f5e4", "API key, not a card token"),
    ("a publishable key", "pk_live_51HqDxYKZf0fRpLk2nQ8", "API key, not a card token"),
    ("a secret key with spaces around", "  sk_live_51HqDxYKZf0fRpLk2n  ", "API key, not a card token"),
    ("a card number", "4242424242424242", "card number"),
    ("a card number with spaces", "4242 4242 4242 4242", "card number"),
    ("a card number with dashes", "4000-0566-5566-5556", "card number"),
    ("nothing", "", "token is required"),
    ("none", None, "token is required"),
    ("a number", 4242, "token is required"),
    ("markup", "tok_visa<script>alert(1)</script>", "malformed"),
    ("SQL", "tok_visa'; DROP TABLE orders; --", "malformed"),
    ("a NUL", "tok_visa\x00", "malformed"),
    ("unicode", "tok_ｖｉｓａ", "malformed"),
    ("a huge token", "tok_" + "a" * 100_000, "malformed"),
]


def refuse_token(shop, token, fragment):
    error = refuse(shop, InvalidToken, fragment, token=token)
    assert error.code in REFUSED_BEFORE_STORING


@pytest.mark.parametrize("case,token,fragment", TOKENS, ids=[c[0] for c in TOKENS])
def test_a_key_card_number_or_junk_as_the_token_is_refused(sqlite_shop, case, token, fragment):
    refuse_token(sqlite_shop, token, fragment)


# -- the customer and the checkout key -------------------------------------------------

NOT_CUSTOMERS = [None, "ada@example.test", {"id": 1}, 1]


@pytest.mark.parametrize("customer", NOT_CUSTOMERS, ids=["nobody", "an email", "a dict", "an id"])
def test_checkout_without_a_signed_in_customer_is_refused(sqlite_shop, customer):
    refuse(sqlite_shop, AuthenticationError, "Sign in", customer=customer)


BAD_KEYS = ["k" * 129, "form 1", "form\x001", "\nform-1", "form\t1", "ключ", 12, b"form-1"]


@pytest.mark.parametrize(
    "key",
    BAD_KEYS,
    ids=["too long", "a space", "a NUL", "a leading line break", "a tab", "unicode", "a number", "bytes"],
)
def test_a_malformed_checkout_key_is_refused(sqlite_shop, key):
    refuse(sqlite_shop, ValidationError, "checkout key is malformed", checkout_key=key)


def test_a_checkout_key_with_a_trailing_line_break_is_refused(sqlite_shop):
    refuse(sqlite_shop, ValidationError, "checkout key is malformed", checkout_key="form-1\n")


@pytest.mark.parametrize("change", ["more of the same", "another SKU", "another address"])
def test_a_checkout_key_reused_with_a_different_cart_or_address_is_refused(shop, change):
    first = place_order(
        shop.db,
        shop.customer,
        items=[("BOX-USD", 1)],
        token="tok_visa",
        address_id=shop.address_id,
        checkout_key="form-7",
    )
    changed = {
        "more of the same": dict(items=[("BOX-USD", 2)], address_id=shop.address_id),
        "another SKU": dict(items=[("BOX-USD", 1), ("PASS-USD", 1)], address_id=shop.address_id),
        "another address": dict(items=[("BOX-USD", 1)], address=HOME),
    }[change]
    error = refuse(shop, ValidationError, "already submitted", checkout_key="form-7", **changed)
    assert first.number in str(error)


def test_the_same_checkout_key_from_another_customer_is_their_own_checkout(shop):
    mine = place_order(
        shop.db, shop.customer, items=[("PASS-USD", 1)], token="tok_visa", checkout_key="form-1"
    )
    theirs = place_order(
        shop.db, shop.other, items=[("PASS-USD", 2)], token="tok_visa", checkout_key="form-1"
    )
    assert mine.number != theirs.number
    assert theirs.customer.id == shop.other.id and theirs.total_amount == 1000


@pytest.mark.postgres
def test_every_hostile_checkout_above_is_refused_on_postgresql_too(postgres_db):
    """The same tables on PostgreSQL, in one database (a database per case is slow)."""
    from tests.reliability.shop import build_shop

    shop = build_shop(postgres_db)
    for _, quantity, fragment in QUANTITIES:
        refuse_quantity(shop, quantity, fragment)
    for _, items, fragment in CARTS:
        refuse_cart(shop, items, fragment)
    for _, kwargs, fragment in ADDRESSES:
        refuse_address(shop, kwargs, fragment)
    for _, token, fragment in TOKENS:
        refuse_token(shop, token, fragment)
    for customer in NOT_CUSTOMERS:
        refuse(shop, AuthenticationError, "Sign in", customer=customer)
    for key in BAD_KEYS:
        refuse(shop, ValidationError, "checkout key is malformed", checkout_key=key)


# -- fuzz ---------------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.floats(),
    st.text(max_size=40),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.decimals(allow_nan=True),
)
skus = st.one_of(
    st.sampled_from(["PASS-USD", "PASS-EUR", "BOX-USD", "GOLD-USD", "FREE-USD", "MUG-OLD"]), junk
)
quantities = st.one_of(st.integers(-5, 1005), junk, st.text(alphabet="0123456789 +-.e", max_size=8))
lines = st.one_of(st.tuples(skus, quantities), junk)
tokens = st.one_of(
    st.sampled_from(
        [
            "tok_visa",
            "tok_chargeDeclined",
            "tok_doesNotExist",
            "sk_live_51HqDxYKZf0fRpLk2n",
            "whsec_9f8e7d6c5b4a3928",
            "4242 4242 4242 4242",
            "pm_card_visa",
        ]
    ),
    junk,
)
address_texts = st.one_of(st.text(max_size=30), st.just(HUGE), junk)
addresses = st.one_of(
    st.none(),
    st.builds(
        AddressInput,
        name=address_texts,
        line1=address_texts,
        city=address_texts,
        postal_code=address_texts,
        country=st.one_of(st.sampled_from(["GB", "gb", "XX"]), address_texts),
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    items=st.one_of(st.lists(lines, max_size=4), junk),
    token=tokens,
    address_id=st.one_of(st.none(), st.sampled_from(["mine", "theirs"]), junk),
    address=addresses,
    checkout_key=st.one_of(st.none(), st.sampled_from(["form-1", "form-2"]), junk),
)
@example(
    items=[("PASS-USD", "٣")], token="tok_visa", address_id=None, address=None, checkout_key=None
)  # Unicode digits: int() reads them, so it is a valid quantity of 3
def test_whatever_checkout_is_given_it_either_works_or_refuses_cleanly(
    sqlite_shop, items, token, address_id, address, checkout_key
):
    shop = sqlite_shop
    address_id = (
        {"mine": shop.address_id, "theirs": shop.other_address_id}.get(address_id, address_id)
        if isinstance(address_id, str)
        else address_id
    )
    before = table_checksums(shop.db)
    orders_before, paid_before = _orders_and_successful_payments(shop.db)
    try:
        order = place_order(
            shop.db,
            shop.customer,
            items=items,
            token=token,
            address_id=address_id,
            address=address,
            checkout_key=checkout_key,
        )
    except OrdersError as error:
        assert_explains_itself(error, token)
        if isinstance(error, PaymentError) and error.code not in REFUSED_BEFORE_STORING:
            # The gateway refused the card: the order exists, created, with the failed
            # attempt on it, and no money was taken.
            assert _orders_and_successful_payments(shop.db) == (orders_before + 1, paid_before)
        else:
            after = table_checksums(shop.db)
            assert after == before, f"a refusal changed {changed_tables(before, after)}"
    else:  # a valid checkout, or a repeated checkout key answering with its first order
        assert order.status in ("paid", "created")


def _orders_and_successful_payments(db) -> tuple[int, int]:
    with db.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(orders)).scalar_one(),
            conn.execute(
                select(func.count()).select_from(payments).where(payments.c.status == "succeeded")
            ).scalar_one(),
        )
