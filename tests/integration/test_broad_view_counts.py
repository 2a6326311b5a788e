"""Search and SKU views count up to a limit: below it the tabs and the total are
exact (the same as counting every order); above it they say "more than the limit"
and never a guessed number, and the page shows the very rows the unlimited list does."""

from __future__ import annotations

import pytest

from orders_core import demo
from orders_core.queries import OrderFilters, count_by_status, list_orders, tab_counts
from orders_core.staff import SYSTEM
from orders_core.status import Status

F = OrderFilters.parse


@pytest.fixture
def shop(db):
    demo.seed(db, orders=600, random_seed=11)
    return db


VIEWS = [
    F(search="example"),  # most orders
    F(search="example", status="paid"),
    F(search="EXAMPLE.ORG"),
    F(search="ar"),  # two characters: no text index, the LIKE alone
    F(sku="TOTE-USD"),
    F(sku="TOTE-USD", status="fulfilled"),
    F(sku="BOX-MONTHLY-USD", currency="usd", min_total="20"),
    F(search="example", sku="PASS-DAY-USD"),
    F(search="zzqxj"),
]


def test_below_the_limit_the_tabs_are_the_exact_counts(shop):
    for filters in VIEWS:
        exact = count_by_status(shop, filters, actor=SYSTEM)
        counted = tab_counts(shop, filters, actor=SYSTEM, limit=max(1, exact["all"]))
        assert counted.exact and counted.counts == exact, filters.describe()
        assert tab_counts(shop, filters, actor=SYSTEM, limit=None).counts == exact


def test_above_the_limit_only_a_lower_bound_of_all_is_given(shop):
    for filters in VIEWS:
        exact = count_by_status(shop, filters, actor=SYSTEM)
        if exact["all"] < 2:
            continue
        limit = exact["all"] - 1
        counted = tab_counts(shop, filters, actor=SYSTEM, limit=limit)
        assert not counted.exact, filters.describe()
        assert counted.counts["all"] == limit < exact["all"]
        assert all(counted.counts[s.value] is None for s in Status)
        assert counted.label("all") == f"{limit:,}+" and counted.label("paid") == "…"


def test_a_limited_list_shows_the_same_rows_and_says_whether_its_total_is_exact(shop):
    for filters in VIEWS:
        for sort, descending, page in (
            ("created_at", True, 1),
            ("created_at", False, 2),
            ("total_amount", True, 1),
            ("number", True, 3),
        ):
            full = list_orders(
                shop, filters, actor=SYSTEM, page=page, page_size=20, sort=sort, descending=descending
            )
            for limit in (5, full.total, full.total + 1):
                if limit < 1:
                    continue
                limited = list_orders(
                    shop,
                    filters,
                    actor=SYSTEM,
                    page=page,
                    page_size=20,
                    sort=sort,
                    descending=descending,
                    count_limit=limit,
                )
                assert [r["id"] for r in limited.rows] == [r["id"] for r in full.rows], filters.describe()
                if full.total <= limit:
                    assert limited.total_exact and limited.total == full.total
                    assert limited.total_label == f"{full.total:,}"
                else:  # a lower bound: the limit, or the orders up to this page's last
                    shown = (page - 1) * 20 + len(full.rows) if full.rows else 0
                    assert not limited.total_exact and limited.total == max(limit, shown) <= full.total
                    assert limited.total_label == f"{max(limit, shown):,}+"


def test_views_counted_from_the_summary_are_exact_whatever_the_limit(shop):
    for filters in (F(), F(status="paid"), F(currency="usd", min_total="20"), F(search="ORD-000007")):
        counted = tab_counts(shop, filters, actor=SYSTEM, limit=1)
        assert counted.exact and counted.counts == count_by_status(shop, filters, actor=SYSTEM)
        page = list_orders(shop, filters, actor=SYSTEM, count_limit=1)
        assert page.total_exact and page.total == list_orders(shop, filters, actor=SYSTEM).total


def test_an_order_listing_a_sku_on_two_lines_is_counted_once(shop):
    from sqlalchemy import insert, select

    from orders_core.schema import order_items

    with shop.write() as conn:
        line = conn.execute(
            select(order_items)
            .where(order_items.c.sku_code == "TOTE-USD")
            .order_by(order_items.c.id)
            .limit(1)
        ).one()
        conn.execute(insert(order_items).values({k: v for k, v in line._asdict().items() if k != "id"}))
    filters = F(sku="TOTE-USD")
    exact = count_by_status(shop, filters, actor=SYSTEM)
    assert tab_counts(shop, filters, actor=SYSTEM, limit=exact["all"]).counts == exact
    assert list_orders(shop, filters, actor=SYSTEM, count_limit=exact["all"]).total == exact["all"]


def test_a_list_given_the_tabs_counts_its_total_from_them_not_again(shop):
    from tests.support.round_trips import counting

    for filters in VIEWS:
        for limit in (5, 10_000):
            for status in (None, "paid"):
                view = filters.with_status(Status(status) if status else None)
                tabs = tab_counts(shop, view, actor=SYSTEM, limit=limit)
                alone = list_orders(shop, view, actor=SYSTEM, count_limit=limit)
                with counting(shop.engine) as sent:
                    given = list_orders(shop, view, actor=SYSTEM, count_limit=limit, tabs=tabs)
                with counting(shop.engine) as sent_alone:
                    list_orders(shop, view, actor=SYSTEM, count_limit=limit)
                assert given == alone, view.describe()
                if status is None or tabs.exact:
                    assert sent.statements < sent_alone.statements, view.describe()
        exact = tab_counts(shop, filters, actor=SYSTEM, limit=None)  # "Count exactly"
        page = list_orders(shop, filters, actor=SYSTEM, count_limit=5, tabs=exact)
        assert (
            page.total_exact and page.total == exact.counts[filters.status.value if filters.status else "all"]
        )
