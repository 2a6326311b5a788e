"""The Orders page's place in the app (issue 11, sections 2 and 3): ticks kept in the URL,
order links that carry the list back, Analytics with the same filters, columns kept per
person, saved views. AppTest through the real entry point; the Chromium side (same-tab
clicks, Back and Forward, new tabs) is in test_browser_navigation.py."""

# ruff: noqa: F811 - the fixtures (db, browser) come from test_pages_orders
from __future__ import annotations

from urllib.parse import parse_qs

from sqlalchemy import select

from orders_core import saved_views
from orders_core.schema import orders
from orders_core.staff import find_staff
from tests.e2e.test_pages_orders import (  # noqa: F401 - fixtures
    ADMIN,
    ANALYST,
    OPS,
    ORDER_PAGE,
    app_as,
    browser,
    db,
    grid,
    grid_numbers,
    link_query,
    ok,
    plain,
    seeded_template,
    texts,
    tick,
    warnings,
)


def page_links(at) -> dict[str, dict[str, str]]:
    """label -> the query the page link opens with."""
    return {
        p.proto.label: {k: v[-1] for k, v in parse_qs(p.proto.query_string).items()}
        for p in at.get("page_link")
    }


def actor(db, email):
    return find_staff(db, email).as_actor()


# -- ticks, links, Back ----------------------------------------------------------------------------
def test_ticks_are_kept_in_the_url_and_come_back_in_a_fresh_session(db):
    at = app_as(db, OPS, status="paid", sort="total_amount", page="2")
    shown = grid_numbers(at)
    tick(at, 0, 2)
    assert at.query_params["ticked"] == f"{shown[0]},{shown[2]}"

    again = app_as(db, OPS, status="paid", sort="total_amount", page="2", ticked=f"{shown[0]},{shown[2]}")
    assert f"2 selected: {shown[0]}, {shown[2]}" in texts(again)
    assert list(grid(again).value["Select"])[:3] == [True, False, True]


def test_sorting_and_paging_keep_the_ticks_and_another_tab_drops_them(db):
    at = app_as(db, OPS, status="paid")
    first = grid_numbers(at)[0]
    tick(at, 0)
    at.selectbox(key="orders_sort").select("total_amount")
    ok(at.run())
    assert at.query_params["ticked"] == first and at.query_params["sort"] == "total_amount"
    assert f"1 selected: {first}" in texts(at)
    at.get_by_key("orders_tab").set_value("fulfilled")
    ok(at.run())
    assert "ticked" not in at.query_params
    assert "No orders selected" in texts(at)


def test_select_all_matching_is_kept_in_the_url(db):
    at = app_as(db, OPS, status="paid")
    ok(at.button(key="orders_select_matching").click().run())
    assert at.query_params["ticked"] == "all"
    again = app_as(db, OPS, status="paid", ticked="all")
    assert any(t.startswith("All ") and t.endswith("matching orders selected") for t in texts(again))


def test_hostile_ticks_in_the_url_are_refused_with_a_notice(db):
    at = app_as(db, OPS, status="paid", ticked="ORD-1,<script>")
    assert "Ignored ticked=" in warnings(at)
    assert "No orders selected" in texts(at)


def test_an_order_link_carries_the_list_and_all_orders_returns_to_it(db):
    at = app_as(db, OPS, status="paid", sort="-total_amount", page="2", **{"from": "2020-01-01"})
    assert not warnings(at), warnings(at)
    tick(at, 1)
    link = grid(at).value["Order"][0]
    query = link_query(link)
    assert query["number"] == [grid_numbers(at)[0]]
    back = parse_qs(query["back"][0].removeprefix("?"))
    assert back == {
        "status": ["paid"],
        "sort": ["-total_amount"],
        "page": ["2"],
        "from": ["2020-01-01"],
    }

    # In the browser the link's back= is the list's URL at the click, ticks included.
    ticked = at.query_params["ticked"]
    detail = app_as(
        db,
        OPS,
        on=ORDER_PAGE,
        number=query["number"][0],
        back=f"?status=paid&sort=-total_amount&page=2&from=2020-01-01&ticked={ticked}&evil=1",
    )
    assert detail.title[0].value == f"Order {query['number'][0]}"
    assert page_links(detail)["All orders"] == {
        "status": "paid",
        "sort": "-total_amount",
        "page": "2",
        "from": "2020-01-01",
        "ticked": ticked,
    }


def test_all_orders_without_a_list_to_return_to_opens_the_plain_list(db):
    number = grid_numbers(app_as(db, OPS))[0]
    detail = app_as(db, OPS, on=ORDER_PAGE, number=number, back="//evil.example/?status=paid")
    assert page_links(detail)["All orders"] == {}


def test_analytics_opens_with_the_filters_of_the_view_and_comes_back_with_them(db):
    at = app_as(db, ANALYST, status="fulfilled", currency="usd", min="20", sort="total_amount", page="2")
    assert page_links(at)["Analytics"] == {"status": "fulfilled", "currency": "usd", "min": "20"}
    charts = app_as(db, ANALYST, on="pages/analytics_page.py", status="fulfilled", currency="usd", min="20")
    assert charts.get_by_key("analytics_filter_min").value == "20"
    assert page_links(charts)["Open these orders"] == {"status": "fulfilled", "currency": "usd", "min": "20"}


def test_the_sort_control_sorts_totals_as_numbers_over_the_whole_result(db):
    with db.read() as conn:
        total_of = dict(conn.execute(select(orders.c.number, orders.c.total_amount)).all())
    first, last = app_as(db, OPS, sort="-total_amount"), app_as(db, OPS, sort="-total_amount", page="4")
    shown = [total_of[n] for n in grid_numbers(first)]
    assert shown == sorted(shown, reverse=True) and shown[0] == max(total_of.values())
    assert total_of[grid_numbers(last)[-1]] == min(total_of.values())  # the whole result, not a page


# -- columns ------------------------------------------------------------------------------------------
def test_column_choices_persist_for_the_person_across_sessions(db):
    at = app_as(db, OPS)
    at.multiselect(key="orders_columns_pick").set_value(["total", "status"])
    ok(at.button(key="orders_columns_save").click().run())
    assert list(grid(at).proto.column_order) == ["Select", "Order", "Total", "Status"]

    again = app_as(db, OPS)  # a new sign-in, a new session
    assert list(grid(again).proto.column_order) == ["Select", "Order", "Total", "Status"]
    other = app_as(db, ANALYST)
    assert "Customer" in list(grid(other).proto.column_order)
    ok(again.button(key="orders_columns_reset").click().run())
    assert "Customer" in list(grid(again).proto.column_order)


# -- saved views ----------------------------------------------------------------------------------------
def test_save_the_current_view_and_open_it_again_by_its_link(db):
    at = app_as(db, OPS, status="paid", currency="usd", min="10", sort="total_amount", page="2")
    at.text_input(key="orders_save_view_name").input("Small paid")
    ok(at.button(key="FormSubmitter:orders_save_view_form-Save").click().run())
    assert any("Saved the view “Small paid”" in s.value for s in at.success)
    [view] = saved_views.list_views(db, actor(db, OPS))
    assert view.params == {
        "status": "paid",
        "currency": "usd",
        "min": "10",
        "sort": "total_amount",
    }  # no page
    assert view.columns == saved_views.DEFAULT_COLUMNS

    opened = app_as(db, OPS, view=str(view.id))
    assert opened.query_params == {"status": "paid", "currency": "usd", "min": "10", "sort": "total_amount"}
    assert opened.get_by_key("orders_tab").value == "paid"


def test_a_duplicate_or_empty_name_is_refused_at_the_form(db):
    saved_views.save_view(db, actor(db, OPS), name="Paid", params={"status": "paid"})
    at = app_as(db, OPS, status="paid")
    at.text_input(key="orders_save_view_name").input("paid")
    ok(at.button(key="FormSubmitter:orders_save_view_form-Save").click().run())
    assert any("already a view of yours named 'Paid'" in plain(e.value) for e in at.error), [
        e.value for e in at.error
    ]
    assert len(saved_views.list_views(db, actor(db, OPS))) == 1


def test_the_default_view_opens_when_orders_is_opened_without_parameters(db):
    view = saved_views.save_view(db, actor(db, OPS), name="Paid", params={"status": "paid"})
    saved_views.set_default_view(db, actor(db, OPS), view.id)
    at = app_as(db, OPS)
    assert at.query_params == {"status": "paid"}
    assert any("Opened your default view “Paid”" in s.value for s in at.success)
    # choosing All on the page is not overridden by the default
    at.get_by_key("orders_tab").set_value("all")
    ok(at.run())
    assert "status" not in at.query_params
    assert app_as(db, ANALYST).query_params == {}  # someone else's default is theirs


def test_a_team_view_is_seen_by_everyone_and_a_personal_one_only_by_its_owner(db):
    team = saved_views.save_view(db, actor(db, ADMIN), name="Ageing", params={"status": "paid"}, team=True)
    mine = saved_views.save_view(db, actor(db, OPS), name="Mine", params={"status": "created"})
    analyst = app_as(db, ANALYST)
    assert analyst.selectbox(key="orders_saved_view_pick").options == ["Team · Ageing"]
    assert app_as(db, ANALYST, view=str(team.id)).query_params == {"status": "paid"}
    refused = app_as(db, ANALYST, view=str(mine.id))
    assert f"no saved view #{mine.id} that you can open" in warnings(refused)
    assert refused.query_params == {}


def test_only_an_admin_is_offered_to_publish_to_the_team(db):
    ops_keys = {c.key for c in app_as(db, OPS).checkbox}
    admin_keys = {c.key for c in app_as(db, ADMIN).checkbox}
    assert "orders_save_view_team" not in ops_keys and "orders_save_view_team" in admin_keys


def test_open_a_saved_view_from_the_list_with_its_columns_then_delete_it(db):
    view = saved_views.save_view(
        db,
        actor(db, OPS),
        name="Big fulfilled",
        params={"status": "fulfilled", "sort": "-total_amount"},
        columns=["total"],
    )
    at = app_as(db, OPS)
    at.selectbox(key="orders_saved_view_pick").set_value(view.id)
    ok(at.run())
    ok(at.button(key="orders_saved_view_open").click().run())
    assert at.query_params == {"status": "fulfilled", "sort": "-total_amount"}
    assert list(grid(at).proto.column_order) == ["Select", "Order", "Total"]
    ok(at.button(key="orders_saved_view_default").click().run())
    assert saved_views.default_view(db, actor(db, OPS)) == view
    ok(at.button(key="orders_saved_view_delete").click().run())
    assert saved_views.list_views(db, actor(db, OPS)) == []
    assert saved_views.default_view(db, actor(db, OPS)) is None
