"""The one refundable-amount rule, in Python and as SQL, on the same cases."""

import pytest
from sqlalchemy import create_engine, literal, select

from orders_core.refund_rules import refundable_amount, refundable_amount_sql

# (total, refunded, paid or None, refundable)
CASES = [
    (1000, 0, None, 1000),  # never refunded, paid in full
    (1000, 0, 1000, 1000),
    (1000, 400, 1000, 600),  # partly refunded: the rest
    (1000, 1000, 1000, 0),  # fully refunded: nothing
    (1000, 0, 0, 0),  # no successful charge: nothing
    (1000, 0, 700, 700),  # charged less than the total: at most what was paid
    (1000, 0, 1500, 1000),  # charged more than the total: at most the total
    (1000, 800, 700, 0),  # refunded more than was paid: never negative
    (1000, 1200, None, 0),
]


@pytest.mark.parametrize("total,refunded,paid,expected", CASES)
def test_a_refund_hands_back_what_was_paid_up_to_the_total_less_earlier_refunds(
    total, refunded, paid, expected
):
    assert refundable_amount(total, refunded, paid=paid) == expected


@pytest.mark.parametrize("total,refunded,paid,expected", CASES)
def test_the_sql_expression_of_the_rule_agrees_with_the_python_rule(total, refunded, paid, expected):
    expression = refundable_amount_sql(
        literal(total), literal(refunded), None if paid is None else literal(paid)
    )
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(select(expression)).scalar_one() == expected
