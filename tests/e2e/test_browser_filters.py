"""The Orders page's filter form in Debian's Chromium (`streamlit run app.py`), at 1280
and 1920 px: `abc` in Min total on a filtered Paid tab is refused at its field (the
typed text stays; the rows, their count and the Mass actions menu stay the Paid view's,
with the menu off), a "to" date before "from" keeps both dates with the error at "to",
the date inputs show their whole dates, and the ageing filter opens the Paid tab.
Screenshots: tests/artifacts/screenshots/filters_*.png."""

from __future__ import annotations

import re
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from orders_core import db as orders_db
from orders_core import demo
from tests.support.app_server import CHROMIUM, app_server, new_page, shot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OPS = "ops@ordersdesk.test"
WIDTHS = [1280, 1920]

if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed", allow_module_level=True)
from playwright.sync_api import expect  # noqa: E402


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("filters-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=300, random_seed=11)
    orders_db.forget_databases()
    with app_server(url, data_dir) as base:
        yield base
    orders_db.forget_databases()


def open_orders(chromium_browser, base: str, width: int, query: str):
    page = new_page(chromium_browser, width=width, height=1100)
    page.goto(f"{base}/?{query}")
    sign_in(page, OPS, demo.DEMO_PASSWORD)
    page.get_by_text(re.compile(r"^Showing \d")).first.wait_for()
    wait_idle(page)
    return page


def query_of(page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def showing(page) -> str:
    return page.get_by_text(re.compile(r"^Showing \d")).first.inner_text()


def field(page, key: str):
    # A rerun that moves an element leaves its old copy, marked stale, for a moment.
    return page.locator(f".st-key-orders_filter_{key}:not([data-stale=true])")


def error_below(page, key: str, text: str) -> None:
    """The error `text` is shown right under the field `key`, in its column (measured
    once the page has settled: a rerun briefly shows elements moving)."""
    error = page.locator(f".st-key-orders_filter_{key}_error", has_text=text).first
    error.wait_for()
    deadline = time.monotonic() + 10
    while True:
        wait_idle(page)
        box, shown = field(page, key).bounding_box(), error.bounding_box()
        below = 0 <= shown["y"] - (box["y"] + box["height"]) < 40
        inside = box["x"] - 2 <= shown["x"] and shown["x"] + shown["width"] <= box["x"] + box["width"] + 2
        if below and inside:
            return
        assert time.monotonic() < deadline, (box, shown)
        time.sleep(0.3)


def date_value(page, key: str) -> str:
    """The date a date input holds (its hidden ISO input), as typed and kept."""
    return field(page, key).locator("input[type=date]").get_attribute("value")


def apply(page) -> None:
    page.get_by_role("button", name="Apply filters").click()
    wait_idle(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_abc_in_min_total_is_refused_at_its_field_and_the_paid_view_stays(site, chromium_browser, width):
    page = open_orders(chromium_browser, site, width, "status=paid&currency=usd&min=10")
    before = (query_of(page), showing(page))
    mass = page.get_by_role("button", name="Mass actions")
    select_all = page.get_by_role("button", name=re.compile(r"^Select all \d+ matching orders"))
    expect(mass).to_be_disabled()  # nothing selected yet
    select_all.click()
    wait_idle(page)
    page.get_by_text(re.compile(r"^All \d+ matching orders selected")).wait_for()
    expect(mass).to_be_enabled()
    before = ({**before[0], "ticked": "all"}, before[1])  # the ticks are in the URL now

    field(page, "min").locator("input").fill("abc")
    apply(page)
    error_below(page, "min", "Min total: 'abc' is not an amount")
    assert (query_of(page), showing(page)) == before
    assert field(page, "min").locator("input").input_value() == "abc"
    expect(mass).to_be_disabled()
    page.get_by_text("The filter form holds input that is not applied (Min total)").wait_for()
    page.get_by_text(re.compile(r"applied view: Paid \(total ≥ \$10\.00\), \d+ orders")).wait_for()
    shot(page, f"filters_refused_abc_{width}")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_to_date_before_from_keeps_both_dates_and_the_error_is_at_to(site, chromium_browser, width):
    page = open_orders(chromium_browser, site, width, "status=fulfilled")
    before = (query_of(page), showing(page))
    for key, digits in (("from", "20260610"), ("to", "20260601")):
        field(page, key).locator("[data-type=year]").click()
        page.keyboard.type(digits)  # year, month, day: each segment moves to the next
        page.keyboard.press("Tab")
    apply(page)
    error_below(page, "to", "Created to 2026-06-01 is before Created from 2026-06-10.")
    assert (query_of(page), showing(page)) == before
    assert date_value(page, "from") == "2026-06-10"
    assert date_value(page, "to") == "2026-06-01"
    shot(page, f"filters_refused_dates_{width}")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_date_inputs_show_their_whole_dates(site, chromium_browser, width):
    page = open_orders(chromium_browser, site, width, "from=2026-06-10&to=2026-12-31")
    assert (date_value(page, "from"), date_value(page, "to")) == ("2026-06-10", "2026-12-31")
    for key in ("from", "to"):
        scroller = field(page, key).get_by_test_id("stDateInputFieldsScroller")
        widths = scroller.evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert widths[0] <= widths[1], (key, widths)  # the whole date shows, nothing scrolled away
    shot(page, f"filters_dates_{width}")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_ageing_filter_opens_the_paid_tab(site, chromium_browser, width):
    page = open_orders(chromium_browser, site, width, "")
    field(page, "unfulfilled").locator("input").fill("20")
    apply(page)
    page.wait_for_url(re.compile(r"unfulfilled=20"))
    assert query_of(page) == {"status": "paid", "unfulfilled": "20"}
    assert re.match(r"Showing 1–\d+ of \d+ orders", showing(page))
    shot(page, f"filters_ageing_{width}")
    page.context.close()
