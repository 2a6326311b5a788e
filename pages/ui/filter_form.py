"""The order filter form of the Orders and Analytics pages: the same widgets, and the
same reading of them into URL query parameters (pages.ui.orders_view parses those)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import streamlit as st

from orders_core.catalog import list_skus
from orders_core.queries import OrderFilters
from orders_core.status import Status
from pages.ui.amounts import format_major_amount
from pages.ui.statuses import status_label

EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
ANY_STATUS = "all"
AMOUNT_HELP = (
    "Order total in the order's own currency, e.g. 25 or 19.99 (yen has no cents: 50 here matches ¥5,000)."
)


def sync_widget(key: str, value) -> None:
    """Show the URL's value in a widget, unless it already shows it (so typing that
    is not yet submitted survives unrelated reruns)."""
    if key not in st.session_state or st.session_state[key] != value:
        st.session_state[key] = value


@dataclasses.dataclass(frozen=True)
class FilterForm:
    """One page's filter form; `name` prefixes its keys (orders → orders_filter_q)."""

    name: str
    with_status: bool  # the Orders page picks the status with its tabs instead
    column_widths: tuple[float, ...]
    with_flags: bool = False  # "Disputed" and "Needs attention" checkboxes (the Orders page)

    def key(self, field: str) -> str:
        return f"{self.name}_filter_{field}"

    def show(
        self, db, filters: OrderFilters, *, on_apply: Callable[[], None], on_clear: Callable[[], None]
    ) -> None:
        key = self.key
        if self.with_status:
            sync_widget(key("status"), filters.status.value if filters.status else ANY_STATUS)
        sync_widget(key("from"), filters.created_from)
        sync_widget(key("to"), filters.created_to)
        sync_widget(key("q"), filters.search or "")
        sync_widget(key("min"), format_major_amount(filters.min_total))
        sync_widget(key("max"), format_major_amount(filters.max_total))
        skus = {s.code: f"{s.code} · {s.product}" for s in list_skus(db)}
        if filters.sku and filters.sku not in skus:
            skus[filters.sku] = f"{filters.sku} (not in the catalog)"
        sync_widget(key("sku"), filters.sku)
        if self.with_flags:
            sync_widget(key("disputed"), filters.disputed)
            sync_widget(key("attention"), filters.needs_attention)
        with st.form(f"{self.name}_filters", border=True):
            columns = iter(st.columns(list(self.column_widths), vertical_alignment="bottom"))
            if self.with_status:
                next(columns).selectbox(
                    "Status",
                    [ANY_STATUS] + [s.value for s in Status],
                    key=key("status"),
                    format_func=lambda s: "All statuses" if s == ANY_STATUS else status_label(s),
                )
            next(columns).text_input(
                "Search", key=key("q"), max_chars=200, placeholder="Order number, customer email or name"
            )
            next(columns).selectbox(
                "Product / SKU",
                list(skus),
                key=key("sku"),
                index=None,
                format_func=skus.get,
                placeholder="Any product",
            )
            next(columns).date_input(
                "Created from",
                key=key("from"),
                value=None,
                format="YYYY-MM-DD",
                min_value=EARLIEST_DATE,
                max_value=LATEST_DATE,
            )
            next(columns).date_input(
                "Created to",
                key=key("to"),
                value=None,
                format="YYYY-MM-DD",
                min_value=EARLIEST_DATE,
                max_value=LATEST_DATE,
            )
            next(columns).text_input(
                "Min total", key=key("min"), placeholder="0.00", help=AMOUNT_HELP, max_chars=14
            )
            next(columns).text_input(
                "Max total", key=key("max"), placeholder="any", help=AMOUNT_HELP, max_chars=14
            )
            buttons = st.container(horizontal=True, vertical_alignment="center")
            if self.with_flags:
                buttons.checkbox("Disputed", key=key("disputed"), help="Orders with an open or lost dispute")
                buttons.checkbox(
                    "Needs attention",
                    key=key("attention"),
                    help="Money moved at the payment gateway without Orders Desk",
                )
            buttons.form_submit_button(
                "Apply filters",
                type="primary",
                on_click=on_apply,
                icon=":material/filter_alt:",
                key=f"{self.name}_apply",
            )
            buttons.form_submit_button(
                "Clear filters", on_click=on_clear, icon=":material/filter_alt_off:", key=f"{self.name}_clear"
            )

    def submitted(self) -> dict[str, str | None]:
        """The URL query parameters the form's widgets ask for (None: not set)."""
        state, key = st.session_state, self.key
        params = {
            "from": state[key("from")].isoformat() if state.get(key("from")) else None,
            "to": state[key("to")].isoformat() if state.get(key("to")) else None,
            "q": (state.get(key("q")) or "").strip() or None,
            "sku": state.get(key("sku")) or None,
            "min": (state.get(key("min")) or "").strip() or None,
            "max": (state.get(key("max")) or "").strip() or None,
        }
        if self.with_flags:
            params["disputed"] = "1" if state.get(key("disputed")) else None
            params["attention"] = "1" if state.get(key("attention")) else None
        if self.with_status:
            status = state.get(key("status")) or ANY_STATUS
            params["status"] = None if status == ANY_STATUS else status
        return params
