"""Searching the order list: an order number goes straight to that order; any other
text matches part of the customer's email or name, case-insensitively, with LIKE's
metacharacters taken literally."""

from __future__ import annotations

from sqlalchemy import update

from orders_core.checkout import place_order
from orders_core.queries import OrderFilters, list_orders
from orders_core.schema import orders
from orders_core.staff import SYSTEM


def numbers(db, search: str) -> list[str]:
    page = list_orders(db, OrderFilters.parse(search=search), actor=SYSTEM, page_size=500)
    return [r["number"] for r in page.rows]


def test_an_order_number_in_any_spelling_finds_that_order_and_only_it(db, customer):
    placed = [place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number for _ in range(12)]
    with db.write() as conn:  # an email that merely contains the digits is not a match
        conn.execute(update(orders).values(customer_email="buyer12@example.test"))
    target = placed[11]  # ORD-000012
    for spelling in (target, target.lower(), "12", "000012", " ORD-12 "):
        assert numbers(db, spelling) == [target], spelling
    assert numbers(db, "ORD-999999") == []


def test_other_text_matches_part_of_the_email_or_name_in_any_case(db, customer):
    number = place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number
    with db.write() as conn:
        conn.execute(
            update(orders).values(
                customer_email="o'connor_100%@example.test", customer_name="Siobhán O'Connor"
            )
        )
    for text in ("CONNOR", "_100%", "siobhán", "example.test", "o'c"):
        assert numbers(db, text) == [number], text
    for text in ("x_100", "100%x", "siobhan"):
        assert numbers(db, text) == [], text


HARD_NAMES = [
    ("o'connor_100%@example.test", "Siobhán O'Connor"),
    ("ÉLODIE@EXAMPLE.FR", "Élodie Dûpont"),
    ("back\\slash@example.test", 'Quote "Q" Person'),
    ("mixed.Case@Example.Org", "ŁUKASZ ŻÓŁW"),
    ("x%y_z@example.test", "100% Real_Name"),
]
SEARCHES = [
    "conn",
    "CONNOR",
    "_100%",
    "100%",
    "x%y",
    "%y_",
    "siobhán",
    "élodie",
    "ÉLODIE",
    "example.test",
    "o'c",
    'e "q" p',
    "back\\sla",
    "łukasz",
    "żółw",
    "dûp",
    "e.o",
    "mixed.case@example.org",
    "o'connor_100%@example.test",  # a whole email: the index is asked for the part before the @
    "ÉLODIE@example.fr",
    "x%y_z@",
    "ab@example.test",  # too short before the @: the whole text is asked
    "@example.test",
    "zzz",
    "ab",
    "a",
    "@",
    "est",
]


def test_the_text_index_gives_exactly_the_answers_of_the_plain_substring_match(db):
    """Every search through the index (FTS5 trigram on SQLite, pg_trgm on PostgreSQL)
    equals the same search by LIKE alone over every order, on a seeded shop plus names
    full of LIKE's metacharacters, quotes and accents."""
    from sqlalchemy import select

    from orders_core import demo
    from orders_core.queries import _search_condition

    demo.seed(db, orders=400, random_seed=6)
    with db.write() as conn:
        ids = list(conn.execute(select(orders.c.id).order_by(orders.c.id).limit(len(HARD_NAMES))).scalars())
        for order_id, (email, name) in zip(ids, HARD_NAMES):
            conn.execute(
                update(orders).where(orders.c.id == order_id).values(customer_email=email, customer_name=name)
            )
    with db.read() as conn:
        sample = list(
            conn.execute(
                select(orders.c.customer_email, orders.c.customer_name)
                .order_by(orders.c.id)
                .offset(50)
                .limit(5)
            )
        )
    searches = (
        SEARCHES
        + [e.split("@")[1] for e, _ in sample]
        + [n.split()[-1][1:5] for _, n in sample]
        + [e.upper() for e, _ in sample]
    )
    for text in searches:
        through_index = sorted(
            r["number"]
            for r in list_orders(db, OrderFilters.parse(search=text), actor=SYSTEM, page_size=500).rows
        )
        with db.read() as conn:
            plain = sorted(
                conn.execute(select(orders.c.number).where(_search_condition(text, dialect=None))).scalars()
            )
        assert through_index == plain, text
    assert len(list_orders(db, OrderFilters.parse(search="example"), actor=SYSTEM, page_size=500).rows) > 50
    if db.is_sqlite:  # the list really went through the index, which holds every order
        from sqlalchemy import text as sql

        with db.write() as conn:  # FTS5 raises if the index disagrees with the orders
            conn.execute(sql("INSERT INTO orders_search (orders_search, rank) VALUES ('integrity-check', 1)"))
        planned = OrderFilters.parse(search="example")._planned(db)
        assert "MATCH" in str(planned[0].compile(db.engine))


def test_the_text_index_follows_a_changed_email_and_name(db, customer):
    number = place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number
    with db.write() as conn:
        conn.execute(update(orders).values(customer_email="first.name@old.example", customer_name="Old Name"))
    assert numbers(db, "old.example") == [number]
    with db.write() as conn:
        conn.execute(update(orders).values(customer_email="second@new.example", customer_name="New"))
    assert numbers(db, "old.example") == [] and numbers(db, "new.example") == [number]


def test_a_bulk_selection_by_search_freezes_exactly_the_orders_the_list_shows(db, customer):
    from orders_core import jobs

    placed = [place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number for _ in range(4)]
    with db.write() as conn:
        conn.execute(
            update(orders).where(orders.c.number.in_(placed[:3])).values(customer_name="Ottilie Brønsted")
        )
    filters = OrderFilters.parse(search="brønst")
    assert jobs.preflight(db, SYSTEM, "export", filters=filters).requested == 3
    job = jobs.enqueue(db, SYSTEM, "export", filters=filters)
    assert job.total == 3 == len(numbers(db, "brønst"))


def test_export_and_analytics_search_through_the_text_index_and_find_the_listed_orders(db, tmp_path):
    """Export and analytics build their WHERE for the database's dialect, so a search
    there goes through the text index too, with the list's answers."""
    import csv

    from orders_core import analytics, demo
    from orders_core.export import export_orders

    demo.seed(db, orders=300, random_seed=8)
    filters = OrderFilters.parse(search="example.org")
    listed = sorted(r["number"] for r in list_orders(db, filters, actor=SYSTEM, page_size=500).rows)
    assert listed
    if db.is_sqlite:
        assert "MATCH" in str(analytics.orders_query(db, filters).compile(db.engine))
    out = tmp_path / "search.csv"
    export_orders(db, out, filters=filters, actor=SYSTEM)
    with out.open(newline="", encoding="utf-8-sig") as handle:
        exported = sorted({row["order_number"] for row in csv.DictReader(handle)})
    assert exported == listed
    loaded = analytics.load_orders(db, filters)
    assert sorted(loaded.column("id").to_pylist()) == sorted(int(n.split("-")[1]) for n in listed)
    items = analytics.load_items(db, filters)
    assert set(items.column("order_id").to_pylist()) == set(loaded.column("id").to_pylist())
