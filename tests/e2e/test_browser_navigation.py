"""The orders list as a place to work from, in Debian's Chromium against `streamlit run
app.py` (issue 11, section 2): an order number opens the order in the same tab and Back
returns to the exact list (tab, filters, sort, page, ticks), Forward works, Ctrl-click
opens a new tab; header clicks do not re-sort the page (the Sort control sorts the whole
result on the server) and the grid has no search of its own; column choices survive a
reload and a sign-out. Screenshots at 1280 and 1920 px go to
tests/artifacts/screenshots/navigation_*.png."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from orders_core import db as orders_db
from orders_core import demo, queries
from orders_core.staff import SYSTEM
from pages.ui.orders_view import PAGE_SIZE, parse_orders_params
from tests.support.app_server import app_server, choose, heading, shot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = demo.DEMO_PASSWORD
OPS = "ops@ordersdesk.test"
HEADER_PX = ROW_PX = 35  # st.data_editor's default header and row height
SELECT_PX, ORDER_PX = 70, 110  # pages/ui/order_grid.py GRID_COLUMNS widths


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("navigation-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=400, random_seed=11)
    orders_db.forget_databases()
    with app_server(url, data_dir) as base:
        yield base, orders_db.open_database(url)
    orders_db.forget_databases()


def rows_on_screen(db, url: str) -> list[str]:
    """The order numbers the server lists for the view in `url` (its page, in its sort)."""
    view, notices = parse_orders_params({k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()})
    assert not notices
    page = queries.list_orders(
        db,
        view.filters,
        actor=SYSTEM,
        page=view.page,
        page_size=PAGE_SIZE,
        sort=view.sort_column,
        descending=view.descending,
    )
    return [r["number"] for r in page.rows]


def grid_canvas(page):
    canvas = page.locator("[class*='st-key-orders_grid_'] canvas").first
    canvas.wait_for(state="visible")
    return canvas.bounding_box()


def tick_row(page, row: int) -> None:
    wait_idle(page)
    box = grid_canvas(page)
    page.mouse.click(box["x"] + SELECT_PX / 2, box["y"] + HEADER_PX + ROW_PX * row + ROW_PX / 2)


def click_order(page, row: int, modifiers: list[str] | None = None, button: str = "left") -> None:
    """Click the order number (a link) of grid row `row`."""
    box = grid_canvas(page)
    x, y = box["x"] + SELECT_PX + 30, box["y"] + HEADER_PX + ROW_PX * row + ROW_PX / 2
    page.mouse.move(x, y)
    for key in modifiers or []:
        page.keyboard.down(key)
    page.mouse.click(x, y, button=button)
    for key in modifiers or []:
        page.keyboard.up(key)


def selected_line(page):
    return page.locator("[data-testid=stText]").filter(has_text=re.compile(r"selected"))


def showing(page, text: str):
    return page.locator("[data-testid=stCaptionContainer]").filter(has_text=text)


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def both_widths(page, name: str) -> None:
    shot(page, f"navigation_{name}_1280")
    page.set_viewport_size({"width": 1920, "height": 1000})
    shot(page, f"navigation_{name}_1920")
    page.set_viewport_size({"width": 1280, "height": 1000})
    wait_idle(page)


def test_an_order_opens_in_the_same_tab_and_back_returns_to_the_exact_list(site, person):
    base, db = site
    page = person()
    try:
        back_and_forward(page, base, db)
    except BaseException:
        shot(page, "navigation_failed")
        raise


def back_and_forward(page, base, db) -> None:
    page.goto(f"{base}/")
    sign_in(page, OPS, PASSWORD)
    heading(page, "Orders").wait_for()

    # tab, a filter, the sort and page 2, all through the page's own controls
    page.locator(".st-key-orders_tab").get_by_role("radio", name=re.compile(r"^Paid")).click()
    page.wait_for_url(re.compile(r"status=paid"))
    choose(page, "orders_filter_currency", "USD")
    page.locator(".st-key-orders_filter_min input").fill("1")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"min=1"))
    choose(page, "orders_sort", "Total: high to low")
    page.wait_for_url(re.compile(r"sort=-total_amount"))
    wait_idle(page)
    page.get_by_role("button", name="Page 2", exact=True).click()
    page.wait_for_url(re.compile(r"page=2"))
    wait_idle(page)
    assert query(page)["sort"] == ["-total_amount"] and query(page)["min"] == ["1"], page.url
    wait_idle(page)
    expected = rows_on_screen(db, page.url)
    showing(page, "Showing 51–").wait_for()
    tick_row(page, 0)
    selected_line(page).filter(has_text=f"1 selected: {expected[0]}").wait_for()
    tick_row(page, 2)
    selected_line(page).filter(has_text=f"2 selected: {expected[0]}, {expected[2]}").wait_for()
    page.wait_for_url(re.compile(r"ticked="))
    list_url = page.url
    assert query(page)["ticked"] == [f"{expected[0]},{expected[2]}"]
    both_widths(page, "01_list_page2_two_ticked")

    # A header click does not re-sort the 50 rows on screen (it is turned off) ...
    box = grid_canvas(page)
    for _ in range(2):
        page.mouse.click(box["x"] + box["width"] - 160, box["y"] + HEADER_PX / 2)
    # ... and its toolbar offers no search of its own rows, nor a column menu of its own.
    page.mouse.move(box["x"] + 200, box["y"] + 100)
    toolbar = page.locator("[class*='st-key-orders_grid_'] [data-testid=stElementToolbar]")
    expect(toolbar.get_by_role("button", name=re.compile("Download"))).to_be_visible()
    expect(toolbar.get_by_role("button", name=re.compile("Search"))).to_have_count(0)
    expect(toolbar.get_by_role("button", name="Show/hide columns")).to_have_count(0)

    # One plain click on the order number: the order, in this same tab.
    tabs_before = len(page.context.pages)
    click_order(page, 1)
    page.wait_for_url(re.compile(rf"/order\?number={expected[1]}"))
    heading(page, f"Order {expected[1]}").wait_for()  # row 1 is still the server's row 1
    assert len(page.context.pages) == tabs_before
    both_widths(page, "02_order_same_tab")

    # Back: the exact list, ticks included.
    page.go_back()
    page.wait_for_url(list_url)
    selected_line(page).filter(has_text=f"2 selected: {expected[0]}, {expected[2]}").wait_for()
    showing(page, "Showing 51–").wait_for()
    expect(page.locator(".st-key-orders_filter_min input")).to_have_value("1")
    expect(page.locator(".st-key-orders_sort input")).to_have_value("Total: high to low")
    shot(page, "navigation_03_back_restored")

    # Forward: the order again.
    page.go_forward()
    heading(page, f"Order {expected[1]}").wait_for()

    # "All orders" on the order page: the list it came from, ticks included.
    page.get_by_role("link", name="All orders").click()
    selected_line(page).filter(has_text=f"2 selected: {expected[0]}, {expected[2]}").wait_for()
    assert query(page) == parse_qs(urlsplit(list_url).query)
    shot(page, "navigation_04_all_orders_restored")

    # Ctrl-click: a new tab with the order; this tab stays on the list.
    with page.context.expect_page() as opened:
        click_order(page, 3, ["Control"])
    other = opened.value
    other.wait_for_load_state()
    heading(other, f"Order {expected[3]}").wait_for()
    assert parse_qs(urlsplit(other.url).query)["back"][0].startswith("?")
    assert page.url.split("?")[0].rstrip("/") == base.rstrip("/")
    shot(other, "navigation_05_ctrl_click_new_tab")

    # A middle-click does the same.
    with page.context.expect_page() as opened:
        click_order(page, 4, button="middle")
    third = opened.value
    third.wait_for_load_state()
    heading(third, f"Order {expected[4]}").wait_for()
    assert page.url.split("?")[0].rstrip("/") == base.rstrip("/")


def open_columns(page) -> None:
    wait_idle(page)
    button = page.locator("[data-testid=stPopoverButton]").filter(has_text="Columns")
    if button.get_attribute("aria-expanded") != "true":
        button.click()


def chip_removers(page):
    """The column picker's chips (their remove buttons), in order."""
    return page.locator('[data-testid=stMultiSelectTagsContainer] [aria-label^="Remove "]')


def picked_columns(page) -> list[str]:
    """The column picker's chips, in order (the page's own record of the columns)."""
    open_columns(page)
    chip_removers(page).first.wait_for()
    labels = chip_removers(page).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    return [label.removeprefix("Remove ") for label in labels]


def test_column_choices_survive_a_reload_and_a_sign_out(site, person):
    base, _ = site
    page = person()
    page.goto(f"{base}/")
    sign_in(page, "support@ordersdesk.test", PASSWORD)
    heading(page, "Orders").wait_for()
    assert picked_columns(page)[:3] == ["Status", "Flags", "Customer"]

    open_columns(page)
    for name in ("Email", "Customer"):  # remove two chips
        page.locator(f'[aria-label="Remove {name}"]').click()
        page.locator(f'[aria-label="Remove {name}"]').wait_for(state="detached")
    page.get_by_role("button", name="Save columns").click()
    wait_idle(page)
    both_widths(page, "06_columns_chosen")
    assert picked_columns(page) == ["Status", "Flags", "Items", "Total", "Refunded", "Created (UTC)"]

    page.reload()
    heading(page, "Orders").wait_for()
    wait_idle(page)
    assert picked_columns(page) == ["Status", "Flags", "Items", "Total", "Refunded", "Created (UTC)"]

    page.locator("#od-sign-out").click()
    page.wait_for_url(re.compile(r"/sign-in"))
    sign_in(page, "support@ordersdesk.test", PASSWORD)
    heading(page, "Orders").wait_for()
    assert picked_columns(page) == ["Status", "Flags", "Items", "Total", "Refunded", "Created (UTC)"]
    shot(page, "navigation_07_columns_after_sign_in")
