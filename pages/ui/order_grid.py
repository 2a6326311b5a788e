"""The orders grid: its columns (chosen per person, orders_core.saved_views), the order
number as a real link to the order, and the browser-side rules that make the grid honest.

st.data_editor draws on a canvas, and its LinkColumn always opens a new tab
(`window.open(url, "_blank")` in Streamlit 1.67's frontend). A small component
(`grid_behaviour`) installed once per page load in the app's document:
- opens an order number clicked plainly in the same tab (a new history entry, so Back
  returns to the list), and Ctrl/Cmd/Shift-click in a new tab, both with `back=` set to
  the list's URL at that moment (tab, filters, sort, page and ticks);
- turns header sorting off (it would sort only the 50 rows on screen; the Sort control
  sorts the whole result on the server), and the grid's own search (same reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from orders_core.saved_views import ORDER_LIST_COLUMNS
from orders_core.status import Status
from pages.ui import display, payment_events, statuses

GRID_KEY_PREFIX = "orders_grid_"
HEADER_PX = ROW_PX = 35  # st.data_editor's default header and row height
SELECT_PX, ORDER_PX = 70, 110  # the widths of the first two columns (set below)

# Column id (orders_core.saved_views) -> grid column label.
COLUMN_LABELS = {
    "status": "Status",
    "flags": "Flags",
    "customer": "Customer",
    "email": "Email",
    "items": "Items",
    "total": "Total",
    "refunded": "Refunded",
    "created": "Created (UTC)",
}
assert set(COLUMN_LABELS) == set(ORDER_LIST_COLUMNS)


def _created(value: str | None):
    return pd.Timestamp(value.rstrip("Z")) if value else pd.NaT


def order_link(number: str, back: dict[str, str]) -> str:
    """The order's page, carrying the list it was opened from (see links.list_back)."""
    query = {"number": number}
    if back:
        query["back"] = "?" + urlencode(back)
    return "/order?" + urlencode(query)


def grid_frame(
    rows: list[dict],
    ticked: Callable[[str], bool],
    back: dict[str, str],
    flags: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """One page of the list; `flags`: order number -> its badges (disputed, attention)."""
    return pd.DataFrame(
        {
            "Select": [ticked(r["number"]) for r in rows],
            "Order": [order_link(r["number"], back) for r in rows],
            "Status": [[r["status"]] for r in rows],
            "Flags": [(flags or {}).get(r["number"], []) for r in rows],
            "Customer": [r["customer_name"] for r in rows],
            "Email": [r["customer_email"] for r in rows],
            "Items": [r["item_count"] for r in rows],
            "Total": [display.money(r["total_amount"], r["currency"]) for r in rows],
            "Refunded": [
                display.money(r["refunded_amount"], r["currency"]) if r["refunded_amount"] else ""
                for r in rows
            ],
            "Created (UTC)": pd.Series([_created(r["created_at"]) for r in rows], dtype="datetime64[ns]"),
        }
    )


GRID_COLUMNS = {
    "Select": st.column_config.CheckboxColumn(
        "Select", width=SELECT_PX, help="Tick orders for a mass action"
    ),
    "Order": st.column_config.LinkColumn(
        "Order",
        width=ORDER_PX,
        display_text=r"number=([^&]+)",
        help="Click to open the order here; Ctrl/Cmd-click opens it in a new tab",
    ),
    "Status": st.column_config.MultiselectColumn(
        "Status",
        width=95,
        options=[s.value for s in Status],
        color=[statuses.STATUS_COLORS[s.value] for s in Status],
        format_func=statuses.status_label,
    ),
    "Flags": payment_events.flags_column(),
    "Customer": st.column_config.TextColumn("Customer", width=145),
    "Email": st.column_config.TextColumn("Email", width=180),
    "Items": st.column_config.NumberColumn("Items", width=50, format="%d"),
    "Total": st.column_config.TextColumn("Total", width=85, alignment="right"),
    "Refunded": st.column_config.TextColumn("Refunded", width=85, alignment="right"),
    "Created (UTC)": st.column_config.DatetimeColumn("Created (UTC)", width=125, format="YYYY-MM-DD HH:mm"),
}
READ_ONLY = [c for c in GRID_COLUMNS if c != "Select"]


def column_order(chosen: Sequence[str]) -> list[str]:
    """The grid's columns: the tick box and the order number, then the person's choice."""
    return ["Select", "Order"] + [COLUMN_LABELS[c] for c in chosen if c in COLUMN_LABELS]


_BEHAVIOUR_TEMPLATE = """
export default function (component) {
  // the order links of the rows on screen, in order (header sorting is off)
  let data = component.data;
  if (typeof data === "string") { try { data = JSON.parse(data); } catch (error) { data = null; } }
  window.__ordersDeskGridLinks = (data && data.links) || [];
  window.__ordersDeskGridWidths = (data && data.widths) || null;
  if (window.__ordersDeskGrid) return;  // once per page load
  window.__ordersDeskGrid = true;
  const GRID = '[class*="st-key-__PREFIX__"]';
  let last = { at: 0 };
  const inGrid = (e) => !!(e.target && e.target.closest && e.target.closest(GRID));
  const headerBand = (e) => {
    // the event's target is the grid's scroller, laid over its canvas
    const grid = e.target && e.target.closest && e.target.closest(GRID);
    const canvas = grid && grid.querySelector("canvas");
    if (!canvas) return false;
    const box = canvas.getBoundingClientRect();
    const inX = e.clientX >= box.left && e.clientX <= box.right;
    return inX && e.clientY >= box.top && e.clientY - box.top < __HEADER__;
  };
  window.addEventListener("pointerdown", (e) => {
    last = { at: Date.now(), grid: inGrid(e), button: e.button,
             modified: e.ctrlKey || e.metaKey || e.shiftKey };
  }, true);
  // Header sorting would sort only the rows on screen: the Sort control is the one way.
  for (const kind of ["pointerdown", "pointerup", "mousedown", "mouseup", "click", "dblclick"]) {
    window.addEventListener(kind, (e) => {
      if (headerBand(e)) { e.stopImmediatePropagation(); e.preventDefault(); }
    }, true);
  }
  // The grid's own search (Ctrl/Cmd-F) would search only the rows on screen.
  window.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "f" && inGrid(e)) {
      e.stopImmediatePropagation();
    }
  }, true);
  const open = window.open.bind(window);
  const withBack = (url) => {
    const link = new URL(String(url), location.href);
    link.searchParams.set("back", location.search || "?");  // the list as it is now
    return link;
  };
  // The link under a middle-click: the grid draws on a canvas, so from the position.
  const linkUnder = (e) => {
    const grid = e.target && e.target.closest && e.target.closest(GRID);
    const canvas = grid && grid.querySelector("canvas");
    if (!canvas) return null;
    const box = canvas.getBoundingClientRect();
    const scroller = grid.querySelector(".dvn-scroller");
    const x = e.clientX - box.left + (scroller ? scroller.scrollLeft : 0);
    const y = e.clientY - box.top - __HEADER__ + (scroller ? scroller.scrollTop : 0);
    // A grid narrower than its box is stretched: each column gets an equal share of the rest.
    const widths = (window.__ordersDeskGridWidths || [__ORDER_LEFT__, __ORDER_RIGHT__ - __ORDER_LEFT__]);
    const total = widths.reduce((a, b) => a + b, 0);
    const extra = Math.max(0, (box.width - total) / widths.length);
    const left = widths[0] + extra, right = left + widths[1] + extra;
    if (y < 0 || x < left + 4 || x > right - 4) return null;
    return window.__ordersDeskGridLinks[Math.floor(y / __ROW__)] || null;
  };
  window.addEventListener("pointerdown", (e) => {
    if (e.button === 1 && linkUnder(e)) e.preventDefault();  // no autoscroll
  }, true);
  window.addEventListener("auxclick", (e) => {
    const link = e.button === 1 && linkUnder(e);
    if (!link) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    open(withBack(link).href, "_blank", "noopener");
  }, true);
  window.open = function (url, target, features) {
    let link;
    try { link = new URL(String(url), location.href); } catch (error) { return open(url, target, features); }
    const fresh = last.grid && Date.now() - last.at < 3000;
    if (!fresh || link.origin !== location.origin || link.pathname !== "/order") {
      return open(url, target, features);
    }
    link = withBack(link);
    if (!last.modified && last.button === 0) {
      location.assign(link.href);  // same tab, a new history entry
      return null;
    }
    return open(link.href, "_blank", "noopener");
  };
}
"""
_BEHAVIOUR_JS = _BEHAVIOUR_TEMPLATE
for _name, _value in {
    "__PREFIX__": GRID_KEY_PREFIX,
    "__HEADER__": HEADER_PX,
    "__ROW__": ROW_PX,
    "__ORDER_LEFT__": SELECT_PX,
    "__ORDER_RIGHT__": SELECT_PX + ORDER_PX,
}.items():
    _BEHAVIOUR_JS = _BEHAVIOUR_JS.replace(_name, str(_value))

# Hides the grid toolbar's search (see above) and its show/hide columns (this browser only:
# the Columns picker keeps the choice for the person); download and fullscreen stay.
_BEHAVIOUR_CSS = """
__GRID__ [data-testid="stElementToolbarButton"]:has(button[aria-label="Search"]),
__GRID__ [data-testid="stElementToolbarButton"]:has(button[aria-label="Show/hide columns"]),
__GRID__ button[aria-label="Search"],
__GRID__ button[aria-label="Show/hide columns"] { display: none !important; }
""".replace("__GRID__", f'[class*="st-key-{GRID_KEY_PREFIX}"]')

_behaviour = st.components.v2.component(
    "orders_grid_behaviour", js=_BEHAVIOUR_JS, css=_BEHAVIOUR_CSS, isolate_styles=False
)


def column_widths(order: Sequence[str]) -> list[int]:
    """The configured width of each shown column, in order."""
    return [int(GRID_COLUMNS[c]["width"]) for c in order]  # type: ignore[index, arg-type]


def install_behaviour(links: list[str], order: Sequence[str]) -> None:
    """Mount the grid's browser-side rules (renders nothing); `links`: the Order column,
    `order`: the shown columns (for where the order numbers are drawn)."""
    _behaviour(
        key="orders_grid_behaviour",
        data={"links": links, "widths": column_widths(order)},
        height=0,
        width=1,
    )
