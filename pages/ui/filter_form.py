"""The order filter form of the Orders and Analytics pages: the same widgets, and the
same reading of them into URL query parameters (pages.ui.orders_view parses those)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import streamlit as st

from orders_core.catalog import list_skus
from orders_core.money import format_amount_input
from orders_core.queries import FIELD_LABELS, MAX_UNFULFILLED_DAYS, OrderFilters
from orders_core.status import Status
from pages.ui.display import escape_markdown
from pages.ui.statuses import status_label

EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
ANY_STATUS = "all"
AMOUNT_HELP = (
    "Order total in the chosen currency's own units: 19.99 for USD, 5000 for JPY. A total needs a currency."
)
AGEING_HELP = "Orders still Paid whose payment is more than this many days old (the ageing view)."
# The form's fields by URL parameter (orders_view.FILTER_PARAMS), in the order shown.
FORM_PARAMS = ("status", "q", "sku", "from", "to", "currency", "min", "max", "unfulfilled")
FLAG_PARAMS = ("disputed", "attention")  # checkboxes, on the Orders page only


def sync_widget(key: str, value) -> None:
    """Show the URL's value in a widget, unless it already shows it (so typing that
    is not yet submitted survives unrelated reruns)."""
    if key not in st.session_state or st.session_state[key] != value:
        st.session_state[key] = value


@dataclasses.dataclass(frozen=True)
class FilterForm:
    """One page's filter form; `name` prefixes its keys (orders → orders_filter_q).

    The widgets show the applied view (the URL's filters) until a submission is
    refused: then they keep what was typed, with each field's error under it, and the
    applied view stays as it was (`set_errors`, `unapplied`)."""

    name: str
    with_status: bool  # the Orders page picks the status with its tabs instead
    column_widths: tuple[float, ...]  # the first row: [status], search, SKU, currency
    with_flags: bool = False  # "Disputed" and "Needs attention" checkboxes (the Orders page)

    def key(self, field: str) -> str:
        return f"{self.name}_filter_{field}"

    @property
    def params(self) -> tuple[str, ...]:
        return (FORM_PARAMS if self.with_status else FORM_PARAMS[1:]) + (
            FLAG_PARAMS if self.with_flags else ()
        )

    def widget_values(self, filters: OrderFilters) -> dict[str, object]:
        """What each widget shows for `filters` (by widget key)."""
        values = {
            self.key("from"): filters.created_from,
            self.key("to"): filters.created_to,
            self.key("q"): filters.search or "",
            self.key("sku"): filters.sku,
            self.key("currency"): filters.currency,
            self.key("min"): format_amount_input(filters.min_total, filters.currency or "usd"),
            self.key("max"): format_amount_input(filters.max_total, filters.currency or "usd"),
            self.key("unfulfilled"): ""
            if filters.unfulfilled_days is None
            else str(filters.unfulfilled_days),
        }
        if self.with_status:
            values[self.key("status")] = filters.status.value if filters.status else ANY_STATUS
        if self.with_flags:
            values[self.key("disputed")] = filters.disputed
            values[self.key("attention")] = filters.needs_attention
        return values

    # -- refused submissions ----------------------------------------------------------------
    def errors(self) -> dict[str, str]:
        """{URL parameter: message} of the last refused submission."""
        return st.session_state.get(self.key("errors")) or {}

    def set_errors(self, errors: dict[str, str]) -> None:
        """A submission was refused: keep the typed values and show `errors` at their fields."""
        st.session_state[self.key("errors")] = {k: v for k, v in errors.items() if k in self.params}

    def clear_errors(self) -> None:
        st.session_state.pop(self.key("errors"), None)

    def reset(self) -> None:
        """Show the applied view again at the next run, whatever was typed (Clear)."""
        self.clear_errors()
        st.session_state.pop(self.key("synced"), None)

    def unapplied(self, filters: OrderFilters) -> list[str]:
        """The labels of the fields whose submitted value is not the applied `filters`'."""
        state = st.session_state
        labels = []
        for key, value in self.widget_values(filters).items():
            if key in state and state[key] != value and (state[key] or None) != (value or None):
                field = key.removeprefix(f"{self.name}_filter_")
                labels.append(FORM_LABELS[field])
        return labels

    # -- the form ----------------------------------------------------------------------------
    def show(
        self, db, filters: OrderFilters, *, on_apply: Callable[[], None], on_clear: Callable[[], None]
    ) -> None:
        key = self.key
        applied = self.widget_values(filters)
        if st.session_state.get(key("synced")) != applied:
            # The applied view changed (a valid submission, a tab, Clear, Back, a link):
            # the widgets show it, and errors about an older submission go.
            for widget, value in applied.items():
                st.session_state[widget] = value
            st.session_state[key("synced")] = applied
            self.clear_errors()
        errors = self.errors()
        catalog = list_skus(db)
        skus = {s.code: f"{s.code} · {s.product}" for s in catalog}
        if filters.sku and filters.sku not in skus:
            skus[filters.sku] = f"{filters.sku} (not in the catalog)"
        currencies = sorted(
            {s.currency for s in catalog} | ({filters.currency} if filters.currency else set())
        )
        typed_currency = st.session_state.get(key("currency"))
        if typed_currency and typed_currency not in currencies:
            st.session_state[key("currency")] = None

        def error_at(column, param: str) -> None:
            if param in errors:  # red, right under its widget, in its column
                column.container(key=key(f"{param}_error")).caption(
                    f":red[:material/error: {escape_markdown(errors[param])}]"
                )

        align = "top" if errors else "bottom"
        with st.form(f"{self.name}_filters", border=True):
            if errors:
                st.error(
                    "These filters were not applied: fix the fields marked below. The list still "
                    "shows the view it showed before.",
                    icon=":material/filter_alt_off:",
                )
            columns = iter(st.columns(list(self.column_widths), vertical_alignment=align))
            if self.with_status:
                column = next(columns)
                column.selectbox(
                    FORM_LABELS["status"],
                    [ANY_STATUS] + [s.value for s in Status],
                    key=key("status"),
                    format_func=lambda s: "All statuses" if s == ANY_STATUS else status_label(s),
                )
                error_at(column, "status")
            column = next(columns)
            column.text_input(
                FORM_LABELS["q"],
                key=key("q"),
                max_chars=200,
                placeholder="Order number, customer email or name",
            )
            error_at(column, "q")
            column = next(columns)
            column.selectbox(
                FORM_LABELS["sku"],
                list(skus),
                key=key("sku"),
                index=None,
                format_func=skus.get,
                placeholder="Any product",
            )
            error_at(column, "sku")
            column = next(columns)
            column.selectbox(
                FORM_LABELS["currency"],
                currencies,
                key=key("currency"),
                index=None,
                format_func=str.upper,
                placeholder="Any currency",
                help="The totals are in this currency's own units; without a total, only its orders.",
            )
            error_at(column, "currency")
            # Dates get the most room: a date input shows its whole date from 1280 px up.
            second = iter(st.columns([1.5, 1.5, 1.1, 1.1, 1.3], vertical_alignment=align))
            for param in ("from", "to"):
                column = next(second)
                column.date_input(
                    FORM_LABELS[param],
                    key=key(param),
                    value=None,
                    format="YYYY-MM-DD",
                    min_value=EARLIEST_DATE,
                    max_value=LATEST_DATE,
                )
                error_at(column, param)
            for param, placeholder in (("min", "0"), ("max", "any")):
                column = next(second)
                column.text_input(
                    FORM_LABELS[param],
                    key=key(param),
                    placeholder=placeholder,
                    help=AMOUNT_HELP,
                    max_chars=20,
                )
                error_at(column, param)
            column = next(second)
            column.text_input(
                FORM_LABELS["unfulfilled"],
                key=key("unfulfilled"),
                placeholder="days",
                help=AGEING_HELP,
                max_chars=len(str(MAX_UNFULFILLED_DAYS)) + 2,
            )
            error_at(column, "unfulfilled")
            buttons = st.container(horizontal=True, horizontal_alignment="right", vertical_alignment="center")
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

        def typed(param: str) -> str | None:
            return (state.get(key(param)) or "").strip() or None

        params = {
            "from": state[key("from")].isoformat() if state.get(key("from")) else None,
            "to": state[key("to")].isoformat() if state.get(key("to")) else None,
            "q": typed("q"),
            "sku": state.get(key("sku")) or None,
            "currency": state.get(key("currency")) or None,
            "min": typed("min"),
            "max": typed("max"),
            "unfulfilled": typed("unfulfilled"),
        }
        if self.with_flags:
            params["disputed"] = "1" if state.get(key("disputed")) else None
            params["attention"] = "1" if state.get(key("attention")) else None
        if self.with_status:
            status = state.get(key("status")) or ANY_STATUS
            params["status"] = None if status == ANY_STATUS else status
        return params


FORM_LABELS = {
    "status": FIELD_LABELS["status"],
    "q": FIELD_LABELS["search"],
    "sku": FIELD_LABELS["sku"],
    "from": FIELD_LABELS["created_from"],
    "to": FIELD_LABELS["created_to"],
    "currency": FIELD_LABELS["currency"],
    "min": FIELD_LABELS["min_total"],
    "max": FIELD_LABELS["max_total"],
    "unfulfilled": FIELD_LABELS["unfulfilled_days"],
    "disputed": FIELD_LABELS["disputed"],
    "attention": FIELD_LABELS["needs_attention"],
}
