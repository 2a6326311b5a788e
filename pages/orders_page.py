"""Orders: status tabs with live counts, filters kept in the URL, one page of rows from
the database at a time, a selection kept by order number, and mass actions that run
as background jobs after a preflight.

The URL is the source of truth for the view (see orders_view.parse_orders_params): widget
callbacks write the query parameters, and every run reads them back. Nothing here
decides what is legal: the menu comes from status.BULK_SOURCE_STATUSES and the
signed-in role, and orders_core.jobs checks everything again."""

from __future__ import annotations

import dataclasses
import hashlib

import pandas as pd
import streamlit as st

from orders_core import jobs, queries
from orders_core.errors import OrdersError
from orders_core.staff import ACTION_PERMISSIONS, Permission
from orders_core.status import BULK_SOURCE_STATUSES, Action, Status
from pages.ui import (
    display,
    links,
    order_grid,
    orders_view,
    payment_events,
    resources,
    session,
    statuses,
    thresholds,
)
from pages.ui import saved_views as saved_views_ui
from pages.ui.filter_form import FilterForm, sync_widget
from pages.ui.job_watch import flash_line, watch_job
from pages.ui.mass_reason import forget_reason, reason_input, reason_refused

# Session-state keys (widgets and page state), all prefixed so other pages don't clash.
TAB = "orders_tab"
SORT = "orders_sort"
PAGER = "orders_page"
MENU = "orders_mass_actions"
NOTICES = "orders_notices"
SELECTED = "orders_selected"  # {order number: True}, in the order ticked
ALL_MATCHING = "orders_select_all_matching"
SCOPE = "orders_selection_scope"
GENERATION = "orders_grid_generation"  # bumped to reset the grid's own edit state
PENDING = "orders_pending_mass_action"
PREFLIGHT = "orders_preflight"
FLASH = "orders_flash"
EXACT = "orders_exact_counts"  # the filters for which "Count exactly" was asked

TABS = ["all"] + [s.value for s in Status]
EXPORT = "export"
FILTERS = FilterForm("orders", with_status=False, column_widths=(2.8, 2.6, 1.4), with_flags=True)


# -- the URL -------------------------------------------------------------------------------
def url_params() -> dict[str, str]:
    return {k: v for k, v in st.query_params.to_dict().items() if k in orders_view.ORDER_PARAMS}


def apply_params(params: dict) -> None:
    """Validate `params`, write the canonical form to the URL, keep any notices."""
    view, notices = orders_view.parse_orders_params({k: v for k, v in params.items() if v})
    st.query_params.from_dict(view.params())
    st.session_state[saved_views_ui.OWN_CHANGE] = True
    if notices:
        st.session_state[NOTICES] = notices


def on_tab_change() -> None:
    params = url_params()
    tab = st.session_state.get(TAB) or "all"
    params["status"] = None if tab == "all" else tab
    params.pop("page", None)
    params.pop("ticked", None)  # another set of orders: a fresh selection
    apply_params(params)


def on_filters_submit() -> None:
    """Apply the form, or refuse it whole: each bad field keeps its text and its error,
    and the URL (the applied view: list, counts, selection) stays as it was."""
    params = url_params()
    params.update(FILTERS.submitted())
    _, errors = orders_view.filter_errors({k: v for k, v in params.items() if v})
    if errors:
        FILTERS.set_errors(errors)
        return
    FILTERS.reset()
    if params.get("unfulfilled") and params.get("status") != Status.PAID.value:
        params["status"] = Status.PAID.value  # the ageing view is of Paid orders: its tab
    params.pop("page", None)
    params.pop("ticked", None)  # another set of orders: a fresh selection
    apply_params(params)


def on_filters_clear() -> None:
    params = url_params()
    FILTERS.reset()
    apply_params({k: params.get(k) for k in ("status", "sort")})


def on_sort_change() -> None:
    params = url_params()
    params["sort"] = st.session_state.get(SORT) or orders_view.DEFAULT_SORT
    params.pop("page", None)
    apply_params(params)


def on_page_change(key: str) -> None:
    params = url_params()
    params["page"] = str(st.session_state.get(key) or 1)
    apply_params(params)


# -- selection -------------------------------------------------------------------------------
def selected() -> dict[str, bool]:
    return st.session_state.setdefault(SELECTED, {})


def reset_grid() -> None:
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1


def clear_selection() -> None:
    st.session_state[SELECTED] = {}
    st.session_state[ALL_MATCHING] = False
    reset_grid()


def select_page(numbers: list[str]) -> None:
    st.session_state[ALL_MATCHING] = False
    chosen = selected()
    for number in numbers:
        chosen[number] = True
    reset_grid()


def select_all_matching() -> None:
    st.session_state[SELECTED] = {}
    st.session_state[ALL_MATCHING] = True
    reset_grid()


def keep_selection_in_scope(view: orders_view.OrdersView) -> None:
    """A selection belongs to one tab and set of filters; another one starts afresh."""
    scope = view.selection_scope()
    if st.session_state.get(SCOPE) != scope:
        st.session_state[SCOPE] = scope
        clear_selection()
        st.session_state.pop(PENDING, None)


TICKS_IN_URL = "orders_ticks_in_url"  # the `ticked` value this session last wrote or read


def ticks_from_url(view: orders_view.OrdersView) -> None:
    """The URL's ticks become the selection when they are not the ones this session wrote:
    a reload, Back or Forward, a link from the order page."""
    if st.session_state.get(TICKS_IN_URL) == view.ticked:
        return
    st.session_state[TICKS_IN_URL] = view.ticked
    st.session_state[SELECTED] = {n: True for n in view.ticked_numbers}
    st.session_state[ALL_MATCHING] = view.ticked_all
    reset_grid()


def ticks_to_url(view: orders_view.OrdersView) -> None:
    """The selection, written to the URL (replacing the entry: ticking is no navigation)."""
    value = orders_view.ticked_param(list(selected()), bool(st.session_state.get(ALL_MATCHING)))
    st.session_state[TICKS_IN_URL] = value
    if value != view.ticked:
        if value:
            st.query_params["ticked"] = value
        else:
            del st.query_params["ticked"]


# -- mass actions ------------------------------------------------------------------------------
def mass_actions(view: orders_view.OrdersView, actor) -> list[str]:
    """The current tab's mass actions that this role may run, Export first."""
    offered = [EXPORT] if actor.can(Permission.EXPORT) else []
    status = view.filters.status
    for action, sources in BULK_SOURCE_STATUSES.items():
        if status is not None and status in sources and actor.can(ACTION_PERMISSIONS[action]):
            offered.append(action.value)
    return offered


def action_label(action: str) -> str:
    return "Export" if action == EXPORT else Action(action).label


def close_mass_action() -> None:
    st.session_state.pop(PENDING, None)
    st.session_state.pop(PREFLIGHT, None)


def _count(value) -> int:
    return value if isinstance(value, int) else len(value or ())


@st.dialog("Mass action", width="medium", on_dismiss=close_mass_action)
def mass_action_dialog(actor) -> None:
    actor = session.current_actor()  # a dialog's rerun skips the entry point's check
    pending = st.session_state.get(PENDING)
    if not pending:
        return
    db = resources.get_db()
    action = pending["action"]
    label = action_label(action)
    st.subheader(f"{label} {pending['description']}")
    if PREFLIGHT not in st.session_state:
        try:
            with st.spinner("Checking the orders…"):
                st.session_state[PREFLIGHT] = jobs.preflight(
                    db, actor, action, order_numbers=pending["numbers"], filters=pending["filters"]
                )
        except OrdersError as error:
            st.error(display.escape_markdown(error))
            if st.button("Close", key="mass_close"):
                close_mass_action()
                st.rerun()
            return
    preflight = st.session_state[PREFLIGHT]
    eligible = _count(preflight.eligible)
    failing = sum((preflight.ineligible or {}).values())
    duplicates = _count(preflight.duplicates)
    refunds = {c: a for c, a in (preflight.refund_totals or {}).items() if a}

    left, middle, right = st.columns(3)
    left.metric("Requested", f"{_count(preflight.requested):,}")
    middle.metric("Will be processed", f"{eligible:,}")
    right.metric("Will fail", f"{failing:,}")
    if duplicates:
        st.caption(f"{duplicates:,} duplicate order number(s) will be counted once.")
    if failing:
        st.markdown("**Why some will fail**")
        reasons = pd.DataFrame(
            {"Reason": list(preflight.ineligible.keys()), "Orders": list(preflight.ineligible.values())}
        )
        st.dataframe(
            reasons,
            hide_index=True,
            width="stretch",
            column_config={
                "Reason": st.column_config.TextColumn(width="large"),
                "Orders": st.column_config.NumberColumn(format="%d"),
            },
        )
    if refunds:
        totals = " · ".join(display.money(a, c) for c, a in sorted(refunds.items()))
        st.markdown(display.escape_markdown(f"Refunds to customers' cards: {totals}"))
    if eligible == 0:
        st.warning(
            f"None of these orders can be {'exported' if action == EXPORT else label.lower() + 'ed'}; "
            "nothing will be queued."
        )
        if st.button("Close", key="mass_close"):
            close_mass_action()
            st.rerun()
        return

    ready = True
    reason, reason_slot = reason_input(action)
    if thresholds.needs_typed_confirmation(eligible, refunds):
        typed = st.text_input(f"This is a large action. Type {eligible} to confirm", key="mass_confirm_count")
        ready = typed.replace(",", "").strip() == str(eligible)
    what = f"{label} {eligible:,} order{'s' if eligible != 1 else ''}"
    if refunds:
        what += " and refund " + " + ".join(display.money(a, c) for c, a in sorted(refunds.items()))
    go, back = st.columns([3, 1])
    if go.button(
        display.escape_markdown(what), key="mass_confirm", type="primary", disabled=not ready, width="stretch"
    ) and not reason_refused(action, reason, reason_slot):
        try:
            job = jobs.enqueue(
                db,
                actor,
                action,
                order_numbers=pending["numbers"],
                filters=pending["filters"],
                selection_label=pending["description"],
                reason=reason,
            )
        except OrdersError as error:
            st.error(display.escape_markdown(error))
            return
        watch_job(job.id)
        forget_reason()
        st.session_state[FLASH] = {"job_id": job.id, "text": f"{what}"}
        close_mass_action()
        clear_selection()
        st.rerun()
    if back.button("Back", key="mass_back", width="stretch"):
        close_mass_action()
        st.rerun()


# -- the grid ------------------------------------------------------------------------------------
GRID_COLUMNS = order_grid.GRID_COLUMNS
READ_ONLY = order_grid.READ_ONLY


def count_limit(view) -> int | None:
    """Search and SKU views count up to queries.COUNT_LIMIT, unless exact counts were asked."""
    return None if st.session_state.get(EXACT) == repr(view.filters) else queries.COUNT_LIMIT


def selection_caption(total: int | str) -> str:
    if st.session_state.get(ALL_MATCHING):
        return f"All {total if isinstance(total, str) else f'{total:,}'} matching orders selected"
    numbers = list(selected())
    if not numbers:
        return "No orders selected"
    shown = ", ".join(numbers[:8]) + (f" and {len(numbers) - 8:,} more" if len(numbers) > 8 else "")
    return f"{len(numbers):,} selected: {shown}"


def view_label(view: orders_view.OrdersView, total: int) -> str:
    """'Paid, 1,234 orders' (with the filters in words when there are any)."""
    tab = "All" if view.tab == "all" else statuses.status_label(view.tab)
    narrowed = view.filters.describe().split(", ", 1)
    extra = f" ({narrowed[1]})" if len(narrowed) > 1 else ""
    return f"{tab}{extra}, {total:,} order{'' if total == 1 else 's'}"


@st.fragment
def results(actor, counted=None) -> None:
    """The rows, selection, mass actions and paging. A fragment: ticking a row or
    turning a page reruns only this part, not the status counts above (`tabs`, which
    also give a search or SKU view's total, so it is not counted twice): `counted` is
    (the filters, their tab counts) from the page's last full run."""
    actor = session.current_actor()  # a fragment's rerun skips the entry point's check
    db = resources.get_db()
    view, _ = orders_view.parse_orders_params(url_params())
    tabs = counted[1] if counted is not None and counted[0] == view.filters else None
    page = queries.list_orders(
        db,
        view.filters,
        actor=actor,
        page=view.page,
        page_size=orders_view.PAGE_SIZE,
        sort=view.sort_column,
        descending=view.descending,
        count_limit=count_limit(view),
        tabs=tabs,
    )
    if view.page > page.pages:
        st.warning(
            f"There is no page {view.page:,} of these orders (there are {page.pages:,}); showing page 1."
        )
        view = dataclasses.replace(view, page=1)
        st.query_params.from_dict(view.params())
        page = queries.list_orders(
            db,
            view.filters,
            actor=actor,
            page=1,
            page_size=orders_view.PAGE_SIZE,
            sort=view.sort_column,
            descending=view.descending,
            count_limit=count_limit(view),
            tabs=tabs,
        )
    keep_selection_in_scope(view)
    ticks_from_url(view)
    all_matching = bool(st.session_state.get(ALL_MATCHING))
    numbers = [r["number"] for r in page.rows]
    columns = saved_views_ui.shown_columns(db, actor)

    toolbar = st.container()
    if not page.rows:
        st.info(
            "No orders match this view."
            if page.total == 0 and view.params()
            else "No orders yet."
            if page.total == 0
            else "No orders on this page."
        )
    else:
        digest = hashlib.sha1(
            repr(
                (
                    view.selection_scope(),
                    view.page,
                    view.sort,
                    numbers,
                    columns,
                    st.session_state.get(GENERATION, 0),
                )
            ).encode()
        ).hexdigest()[:16]
        chosen = selected()
        back = {k: v for k, v in view.params().items() if k != "ticked"}
        frame = order_grid.grid_frame(
            page.rows,
            lambda n: all_matching or n in chosen,
            back,
            payment_events.list_flags(actor, page.rows),
        )
        order_grid.install_behaviour(list(frame["Order"]), order_grid.column_order(columns))
        edited = st.data_editor(
            frame,
            key=f"{order_grid.GRID_KEY_PREFIX}{digest}",
            column_order=order_grid.column_order(columns),
            hide_index=True,
            width="stretch",
            height=min(38 + 35 * len(page.rows), 38 + 35 * 15) + 2,
            column_config=GRID_COLUMNS,
            disabled=READ_ONLY + (["Select"] if all_matching else []),
            num_rows="fixed",
        )
        if not all_matching:
            for number, ticked in zip(numbers, edited["Select"].tolist()):
                if ticked:
                    chosen[number] = True
                else:
                    chosen.pop(number, None)
    ticks_to_url(view)

    with toolbar:
        count = page.total if all_matching else len(selected())
        unapplied = FILTERS.unapplied(view.filters)
        held, shown = ", ".join(unapplied), view_label(view, page.total)
        if unapplied:
            st.warning(
                display.escape_markdown(
                    f"The filter form holds input that is not applied ({held}). "
                    f"The list, its count and any selection are the applied view: {shown}. "
                    "Select all and Mass actions are off until you apply valid filters or clear them."
                ),
                icon=":material/filter_alt_off:",
            )
        left, right = st.columns([5, 3], vertical_alignment="center")
        with left:
            st.text(selection_caption(page.total_label))
            buttons = st.container(horizontal=True)
            if page.rows and not all_matching:
                buttons.button(
                    "Select all on this page",
                    key="orders_select_page",
                    on_click=select_page,
                    args=(numbers,),
                    icon=":material/done_all:",
                )
            if page.total and not all_matching and page.total > len(selected()):
                buttons.button(
                    f"Select all {page.total_label} matching orders",
                    key="orders_select_matching",
                    on_click=select_all_matching,
                    icon=":material/select_all:",
                    disabled=bool(unapplied),
                    help=f"Off: the filter form holds input that is not applied ({held})."
                    if unapplied
                    else None,
                )
            if count:
                buttons.button(
                    "Clear selection",
                    key="orders_clear_selection",
                    on_click=clear_selection,
                    icon=":material/deselect:",
                )
        with right:
            controls = st.container(
                horizontal=True, horizontal_alignment="right", vertical_alignment="bottom"
            )
            with controls:
                sync_widget(SORT, view.sort)
                st.selectbox(
                    "Sort",
                    list(orders_view.SORT_OPTIONS),
                    key=SORT,
                    format_func=orders_view.SORT_OPTIONS.get,
                    on_change=on_sort_change,
                    width=200,
                    label_visibility="collapsed",
                )
                offered = mass_actions(view, actor)
                choice = st.menu_button(
                    "Mass actions",
                    offered or ["export"],
                    key=MENU,
                    type="primary",
                    format_func=action_label,
                    icon=":material/bolt:",
                    disabled=not offered or count == 0 or bool(unapplied),
                    help=(
                        "Your role has no mass actions."
                        if not offered
                        else f"Off: the filter form holds unapplied input ({held}); the list shows {shown}."
                        if unapplied
                        else None
                        if count
                        else "Select orders first."
                    ),
                )
        if choice and count and not unapplied:
            description = (
                f"all {page.total_label} matching orders ({view.filters.describe()})"
                if all_matching
                else f"{count:,} selected order{'s' if count != 1 else ''}"
            )
            st.session_state[PENDING] = {
                "action": choice,
                "description": description,
                "numbers": None if all_matching else list(selected()),
                "filters": view.filters if all_matching else None,
            }
            st.session_state.pop(PREFLIGHT, None)
            st.session_state.pop("mass_confirm_count", None)

    if page.rows:
        first = (page.page - 1) * page.page_size + 1
        footer = st.columns([2, 3, 3], vertical_alignment="center")
        footer[0].caption(f"Showing {first:,}–{first + len(page.rows) - 1:,} of {page.total_label} orders")
        with footer[1]:
            # Keyed by page: the widget starts at the URL's page, whatever was clicked before.
            pager = f"{PAGER}_{page.page}_{page.pages}"
            st.pagination(
                page.pages,
                default=page.page,
                key=pager,
                on_change=on_page_change,
                args=(pager,),
                width="stretch",
            )
        with footer[2]:
            opener = st.container(horizontal=True, vertical_alignment="bottom")
            customers = {r["number"]: r["customer_name"] for r in page.rows}
            target = opener.selectbox(
                "Open an order",
                numbers,
                key="orders_open_number",
                index=None,
                placeholder="Open an order…",
                label_visibility="collapsed",
                format_func=lambda n: f"{n} · {customers.get(n, '')}",
            )
            if opener.button(
                "Open", key="orders_open_button", disabled=target is None, icon=":material/open_in_new:"
            ):
                st.switch_page(links.ORDER_PAGE, query_params={"number": target})

    if st.session_state.get(PENDING):
        mass_action_dialog(actor)


# -- the page -----------------------------------------------------------------------------------
def main() -> None:
    actor = session.current_actor()
    db = resources.get_db()
    number = st.query_params.get("number")
    if number:
        # A link to an order (/order?number=…) that lost its path on the way, e.g. through
        # the sign-in page of a new browser tab: open that order.
        st.switch_page(links.ORDER_PAGE, query_params={"number": number})
    view_notices = saved_views_ui.open_from_url(db, actor, orders_view.ORDER_PARAMS)
    raw = url_params()
    view, notices = orders_view.parse_orders_params(raw)
    notices = view_notices + notices
    if raw != view.params():  # show the URL of what is actually on screen
        st.query_params.from_dict(view.params())
    notices = st.session_state.pop(NOTICES, []) + notices

    st.title("Orders")
    flash = st.session_state.get(FLASH)
    if flash:
        with st.container(border=True):
            cols = st.columns([6, 2, 1], vertical_alignment="center")
            flash_line(cols[0], db, actor, flash["job_id"], flash["text"])
            cols[1].page_link(
                links.JOBS_PAGE,
                label=f"Open job #{flash['job_id']}",
                icon=":material/arrow_forward:",
                query_params={"job": str(flash["job_id"])},
            )
            if cols[2].button("Dismiss", key="orders_flash_dismiss"):
                st.session_state.pop(FLASH, None)
                st.rerun()
    if notices:
        st.warning(
            "Some parts of the link could not be used, so their defaults are shown:  \n"
            + "  \n".join("• " + display.escape_markdown(n) for n in notices),
            icon=":material/link_off:",
        )

    counts = queries.tab_counts(db, view.filters, actor=actor, limit=count_limit(view))
    sync_widget(TAB, view.tab)
    st.segmented_control(
        "Status",
        TABS,
        key=TAB,
        required=True,
        on_change=on_tab_change,
        format_func=lambda t: f"{'All' if t == 'all' else statuses.status_label(t)} · {counts.label(t)}",
        label_visibility="collapsed",
        width="stretch",
    )

    if not counts.exact:
        note = st.container(horizontal=True, vertical_alignment="center")
        note.caption(
            f"More than {counts.limit:,} orders match, so the counts stop there; "
            "counting them all takes longer."
        )
        if note.button("Count exactly", key="orders_count_exactly", icon=":material/functions:"):
            st.session_state[EXACT] = repr(view.filters)
            st.rerun()

    FILTERS.show(db, view.filters, on_apply=on_filters_submit, on_clear=on_filters_clear)
    saved_views_ui.show_message()
    bar, analytics = st.columns([6, 1.3], vertical_alignment="bottom")
    with bar:
        saved_views_ui.views_bar(db, actor, view.params(), saved_views_ui.shown_columns(db, actor))
    analytics.page_link(
        links.ANALYTICS_PAGE,
        label="Analytics",
        icon=":material/insights:",
        query_params=orders_view.analytics_params(view),
        help="Charts of these orders (this tab and these filters)",
    )

    results(actor, (view.filters, counts))


if __name__ == "__main__":
    main()
