"""The Orders page's filter form never widens the view by mistake (issue 11 §1): a bad
value is refused at its own field with the typed text kept, nothing of that submission
is applied, and while the form holds input that is not applied, "Select all matching"
and Mass actions are off, saying which view the list shows. Also the ageing filter
("unfulfilled for more than N days") from the form to a bulk job. AppTest, headless."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from orders_core.clock import utcnow
from orders_core.schema import job_items, jobs, orders
from tests.e2e import test_pages_orders as page_tests
from tests.e2e.test_pages_orders import OPS, app_as, grid_numbers, menu, ok, plain, texts, warnings

# The Orders page tests' fixtures: a copy of one seeded SQLite file, this test's browser.
seeded_template, db, browser = page_tests.seeded_template, page_tests.db, page_tests.browser


def showing(at) -> str:
    [caption] = [c.value for c in at.caption if c.value.startswith("Showing ")]
    return caption


def errors(at) -> list[str]:
    """The messages shown at the form's fields (red captions under the widgets)."""
    prefix = ":red[:material/error: "
    return [plain(c.value[len(prefix) : -1]) for c in at.caption if c.value.startswith(prefix)]


def tab_labels(at) -> list[str]:
    return list(at.get_by_key("orders_tab").options)


def screen(at) -> tuple:
    """What the person sees of the applied view: URL, rows, count, tabs, menu."""
    return (
        dict(at.query_params),
        grid_numbers(at),
        showing(at),
        at.get_by_key("orders_tab").value,
        list(menu(at).options),
    )


def test_abc_in_min_total_on_a_filtered_paid_tab_is_refused_at_the_field_and_the_view_stays(db):
    at = ok(app_as(db, OPS, status="paid", currency="usd", min="10"))
    before = screen(at)
    assert before[4] == ["Export", "Fulfill", "Cancel"]  # the Paid tab's mass actions
    paid_total = int(before[2].rsplit(" of ", 1)[1].split()[0].replace(",", ""))
    ok(at.button(key="orders_select_matching").click().run())
    assert f"All {paid_total} matching orders selected" in texts(at)
    selected = screen(at)  # the same view, its ticks now in the URL (ticked=all)
    assert selected[0] == {**before[0], "ticked": "all"} and selected[1:] == before[1:]

    at.text_input(key="orders_filter_min").input("abc")
    ok(at.button(key="orders_apply").click().run())

    assert screen(at) == selected  # the URL, the rows, their count, the tab, the menu's actions
    assert at.text_input(key="orders_filter_min").value == "abc"  # the typed text stays
    assert "Min total: 'abc' is not an amount; type a number like 25 or 19.99." in errors(at)
    assert f"All {paid_total} matching orders selected" in texts(at)  # of the applied view
    assert menu(at).proto.disabled
    assert f"Paid (total ≥ $10.00), {paid_total} orders" in menu(at).proto.help
    notice = warnings(at)
    assert "The filter form holds input that is not applied (Min total)" in notice
    assert f"the applied view: Paid (total ≥ $10.00), {paid_total} orders" in notice


def test_select_all_matching_is_off_while_the_form_holds_a_refused_value(db):
    at = ok(app_as(db, OPS, status="paid"))
    for text in ("-5", "1,000.505"):
        at.selectbox(key="orders_filter_currency").set_value("usd")
        at.text_input(key="orders_filter_min").input(text)
        ok(at.button(key="orders_apply").click().run())
        assert at.query_params == {"status": "paid"}
        assert at.button(key="orders_select_matching").disabled
        assert menu(at).proto.disabled
        assert at.text_input(key="orders_filter_min").value == text
        assert any(e.startswith(f"Min total: '{text}'") for e in errors(at)), errors(at)


def test_a_total_without_a_currency_is_refused_at_the_total(db):
    at = ok(app_as(db, OPS))
    at.text_input(key="orders_filter_max").input("50")
    ok(at.button(key="orders_apply").click().run())
    assert at.query_params == {}
    assert any(e.startswith("Max total needs a currency") for e in errors(at)), errors(at)
    at.selectbox(key="orders_filter_currency").set_value("jpy")
    ok(at.button(key="orders_apply").click().run())
    assert at.query_params == {"currency": "jpy", "max": "50"}  # ¥50, in yen's own units
    assert not errors(at) and "not applied" not in warnings(at)


def test_a_to_date_before_the_from_date_keeps_both_dates_and_says_so_at_the_to_date(db):
    at = ok(app_as(db, OPS, status="fulfilled"))
    before = screen(at)
    start, end = dt.date(2026, 6, 10), dt.date(2026, 6, 1)
    at.date_input(key="orders_filter_from").set_value(start)
    at.date_input(key="orders_filter_to").set_value(end)
    ok(at.button(key="orders_apply").click().run())
    assert screen(at) == before
    assert at.date_input(key="orders_filter_from").value == start
    assert at.date_input(key="orders_filter_to").value == end
    assert "Created to 2026-06-01 is before Created from 2026-06-10." in errors(at)


def test_fixing_the_value_applies_it_and_clear_empties_a_refused_form(db):
    at = ok(app_as(db, OPS, status="paid"))
    at.selectbox(key="orders_filter_currency").set_value("usd")
    at.text_input(key="orders_filter_min").input("abc")
    ok(at.button(key="orders_apply").click().run())
    at.text_input(key="orders_filter_min").input("25")
    ok(at.button(key="orders_apply").click().run())
    assert at.query_params == {"status": "paid", "currency": "usd", "min": "25"}
    assert not errors(at) and "not applied" not in warnings(at)
    assert not at.button(key="orders_select_matching").disabled

    at.text_input(key="orders_filter_max").input("zzz")
    ok(at.button(key="orders_apply").click().run())
    assert at.text_input(key="orders_filter_max").value == "zzz"
    ok(at.button(key="orders_clear").click().run())
    assert at.query_params == {"status": "paid"}
    assert at.text_input(key="orders_filter_max").value == "" and not errors(at)
    assert at.text_input(key="orders_filter_min").value == ""


def test_a_bad_value_in_a_shared_link_falls_back_with_a_notice_naming_the_field(db):
    at = ok(app_as(db, OPS, status="paid", currency="usd", min="abc", max="40"))
    notice = warnings(at)
    assert "Ignored min='abc': Min total: 'abc' is not an amount" in notice, notice
    assert at.query_params == {"status": "paid", "currency": "usd", "max": "40"}
    assert at.text_input(key="orders_filter_max").value == "40"
    assert "not applied" not in warnings(at)  # the form shows the applied view
    assert not at.button(key="orders_select_matching").disabled


def ageing(db, days: int) -> set[str]:
    cutoff = utcnow() - dt.timedelta(days=days)
    with db.read() as conn:
        return set(
            conn.execute(
                select(orders.c.number).where(orders.c.status == "paid", orders.c.paid_at < cutoff)
            ).scalars()
        )


def test_the_ageing_filter_opens_the_paid_tab_and_its_selection_becomes_the_job(db):
    expected = ageing(db, 20)
    assert 0 < len(expected) < len(ageing(db, 0))
    at = ok(app_as(db, OPS))
    at.text_input(key="orders_filter_unfulfilled").input("20")
    ok(at.button(key="orders_apply").click().run())
    assert at.query_params == {"status": "paid", "unfulfilled": "20"}
    assert at.get_by_key("orders_tab").value == "paid"
    assert set(grid_numbers(at)) <= expected
    assert showing(at).endswith(f" of {len(expected)} orders")
    assert f"Paid · {len(expected)}" in tab_labels(at) and "Fulfilled · 0" in tab_labels(at)

    ok(at.button(key="orders_select_matching").click().run())
    ok(menu(at).click("fulfill").run())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Will be processed"] == str(len(expected))
    ok(at.button(key="mass_confirm").click().run())
    with db.read() as conn:
        [job] = conn.execute(select(jobs)).all()
        frozen = set(
            conn.execute(select(job_items.c.order_number).where(job_items.c.job_id == job.id)).scalars()
        )
    assert frozen == expected and job.total == len(expected)
    assert "unfulfilled for more than 20 days" in job.selection


def test_a_bad_number_of_days_is_refused_at_its_field(db):
    at = ok(app_as(db, OPS, status="paid"))
    at.text_input(key="orders_filter_unfulfilled").input("a week")
    ok(at.button(key="orders_apply").click().run())
    assert at.query_params == {"status": "paid"}
    assert at.text_input(key="orders_filter_unfulfilled").value == "a week"
    assert any(e.startswith("Unfulfilled over (days) must be a whole number") for e in errors(at))


def test_the_analytics_filter_form_refuses_a_bad_total_the_same_way(db):
    at = ok(app_as(db, OPS, on="pages/analytics_page.py", status="paid", currency="usd", min="10"))
    before = dict(at.query_params)
    figures = [m.value for m in at.metric]
    at.text_input(key="analytics_filter_min").input("1,000.505")
    ok(at.button(key="analytics_apply").click().run())
    assert dict(at.query_params) == before and [m.value for m in at.metric] == figures
    assert at.text_input(key="analytics_filter_min").value == "1,000.505"
    assert "Min total: '1,000.505' has too many decimals; USD amounts take at most 2 decimals." in errors(at)
