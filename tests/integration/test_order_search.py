"""Searching the order list: an order number goes straight to that order; any other
text matches part of the customer's email or name, case-insensitively, with LIKE's
metacharacters taken literally."""
from __future__ import annotations

from sqlalchemy import update

from orders_core.checkout import place_order
from orders_core.queries import OrderFilters, list_orders
from orders_core.schema import orders


def numbers(db, search: str) -> list[str]:
    return [r["number"] for r in list_orders(db, OrderFilters.parse(search=search), page_size=500).rows]


def test_an_order_number_in_any_spelling_finds_that_order_and_only_it(db, customer):
    placed = [place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa")["number"]
              for _ in range(12)]
    with db.write() as conn:  # an email that merely contains the digits is not a match
        conn.execute(update(orders).values(customer_email="buyer12@example.test"))
    target = placed[11]  # ORD-000012
    for spelling in (target, target.lower(), "12", "000012", " ORD-12 "):
        assert numbers(db, spelling) == [target], spelling
    assert numbers(db, "ORD-999999") == []


def test_other_text_matches_part_of_the_email_or_name_in_any_case(db, customer):
    number = place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa")["number"]
    with db.write() as conn:
        conn.execute(update(orders).values(customer_email="o'connor_100%@example.test",
                                           customer_name="Siobhán O'Connor"))
    for text in ("CONNOR", "_100%", "siobhán", "example.test", "o'c"):
        assert numbers(db, text) == [number], text
    for text in ("x_100", "100%x", "siobhan"):
        assert numbers(db, text) == [], text
