"""The Orders page's saved views and column picker. Renders and calls; every rule
(names, duplicates, who may open, publish or delete) is in orders_core.saved_views."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

import streamlit as st

from orders_core import saved_views
from orders_core.errors import OrdersError
from orders_core.staff import Actor, Permission
from pages.ui import display, order_grid

VIEW_PARAM = "view"  # ?view=<id>: open a saved view (a shared link)
CURRENT = "orders_saved_view"  # {"id", "name", "params"} of the view opened last
COLUMNS_OVERRIDE = "orders_view_columns"  # a view's own columns, until the person picks
OWN_CHANGE = "orders_own_url_change"  # the page itself just wrote the URL
MESSAGE = "orders_saved_view_message"
# The parameters a view keeps: the list's, without where one is in it (page, ticks).
NOT_KEPT = ("page", "ticked")


def kept_params(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in NOT_KEPT}


def _remember(view: saved_views.SavedView) -> None:
    st.session_state[CURRENT] = {"id": view.id, "name": view.name, "params": view.params}
    if view.columns:
        st.session_state[COLUMNS_OVERRIDE] = list(view.columns)
    else:
        st.session_state.pop(COLUMNS_OVERRIDE, None)


def open_from_url(db, actor: Actor, allowed: tuple[str, ...]) -> list[str]:
    """`?view=<id>` becomes that view's parameters in the URL; with no parameters at all
    (and not because this page just cleared them), the person's default view opens.
    Returns notices for what could not be opened."""
    own_change = st.session_state.pop(OWN_CHANGE, False)
    requested = st.query_params.get(VIEW_PARAM)
    if requested is not None:
        try:
            view = saved_views.get_view(db, actor, requested)
        except OrdersError as error:
            params = {k: v for k, v in st.query_params.to_dict().items() if k in allowed}
            st.query_params.from_dict(params)
            return [f"Ignored view={str(requested)[:40]!r}: {error}"]
        _remember(view)
        st.query_params.from_dict({k: v for k, v in view.params.items() if k in allowed})
        st.session_state[MESSAGE] = f"Opened the saved view “{view.name}”."
        return []
    if not own_change and not st.query_params.to_dict():
        try:
            default = saved_views.default_view(db, actor)
        except OrdersError:
            default = None
        if default is not None and default.params:
            _remember(default)
            st.query_params.from_dict({k: v for k, v in default.params.items() if k in allowed})
            st.session_state[MESSAGE] = f"Opened your default view “{default.name}”."
    return []


def shown_columns(db, actor: Actor) -> list[str]:
    override = st.session_state.get(COLUMNS_OVERRIDE)
    if override:
        known = [c for c in override if c in saved_views.ORDER_LIST_COLUMNS]
        return known or list(saved_views.DEFAULT_COLUMNS)
    return list(saved_views.column_choice(db, actor))


def _site() -> str:
    parts = urlsplit(st.context.url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def _run(action: Callable[[], object], success: str) -> None:
    try:
        action()
    except OrdersError as error:
        st.session_state[MESSAGE] = "error:" + str(error)
    else:
        st.session_state[MESSAGE] = success


def show_message() -> None:
    message = st.session_state.pop(MESSAGE, None)
    if message and message.startswith("error:"):
        st.error(display.escape_markdown(message.removeprefix("error:")), icon=":material/error:")
    elif message:
        st.success(display.escape_markdown(message), icon=":material/bookmark:")


def views_bar(db, actor: Actor, params: dict[str, str], columns: list[str]) -> None:
    """Saved views (open, save, default, share, delete) and the column picker, in a row."""
    views = saved_views.list_views(db, actor)
    by_id = {v.id: v for v in views}
    current = st.session_state.get(CURRENT)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    with row:
        chosen = st.selectbox(
            "Saved views",
            list(by_id),
            index=list(by_id).index(current["id"]) if current and current["id"] in by_id else None,
            key="orders_saved_view_pick",
            placeholder="Saved views…" if views else "No saved views yet",
            format_func=lambda i: ("Team · " if by_id[i].team else "") + by_id[i].name,
            label_visibility="collapsed",
            width=260,
        )
        if st.button("Open view", key="orders_saved_view_open", disabled=chosen is None):
            try:
                view = saved_views.get_view(db, actor, chosen)
            except OrdersError as error:  # deleted or unpublished meanwhile
                st.session_state[MESSAGE] = "error:" + str(error)
                st.rerun()
            _remember(view)
            st.session_state[OWN_CHANGE] = True
            st.query_params.from_dict(view.params)
            st.session_state[MESSAGE] = f"Opened the saved view “{view.name}”."
            st.rerun()
        with st.popover("Save view", icon=":material/bookmark_add:"):
            save_form(db, actor, params, columns)
        if chosen is not None:
            with st.popover("View options", icon=":material/tune:"):
                view_options(db, actor, by_id[chosen])
        with st.popover("Columns", icon=":material/view_column:"):
            column_picker(db, actor, columns)


def save_form(db, actor: Actor, params: dict[str, str], columns: list[str]) -> None:
    with st.form("orders_save_view_form", border=False):
        name = st.text_input("Name", key="orders_save_view_name", max_chars=saved_views.MAX_NAME)
        with_columns = st.checkbox("Keep my columns with it", value=True, key="orders_save_view_columns")
        team = (
            st.checkbox("Publish to the team (everyone sees it)", key="orders_save_view_team")
            if actor.can(Permission.PUBLISH_VIEWS)
            else False
        )
        replace = st.checkbox("Replace a view of the same name", key="orders_save_view_replace")
        if st.form_submit_button("Save", type="primary"):
            try:
                view = saved_views.save_view(
                    db,
                    actor,
                    name=name,
                    params=kept_params(params),
                    columns=columns if with_columns else None,
                    team=team,
                    replace=replace,
                )
            except OrdersError as error:
                st.error(display.escape_markdown(error))
                return
            _remember(view)
            whose = " for the team." if view.team else "."
            st.session_state[MESSAGE] = f"Saved the view “{view.name}”{whose}"
            st.rerun()


def view_options(db, actor: Actor, view: saved_views.SavedView) -> None:
    st.markdown(f"**{display.escape_markdown(view.name)}**" + (" · team view" if view.team else ""))
    st.caption("Share it: a link that opens this view")
    st.code(f"{_site()}/?{urlencode({VIEW_PARAM: view.id})}", language=None)
    if not view.team:
        st.caption("Only you can open that link; this one (its filters) works for anyone:")
        st.code(f"{_site()}/?{urlencode(view.params)}", language=None)
    left, right = st.columns(2)
    if left.button("Make it my default", key="orders_saved_view_default", width="stretch"):
        _run(lambda: saved_views.set_default_view(db, actor, view.id), f"“{view.name}” is your default view.")
        st.rerun()
    if right.button("No default", key="orders_saved_view_no_default", width="stretch"):
        _run(lambda: saved_views.set_default_view(db, actor, None), "The list opens on all orders again.")
        st.rerun()
    may_delete = (view.owned_by(actor) and not view.team) or (
        view.team and actor.can(Permission.PUBLISH_VIEWS)
    )
    if may_delete and st.button("Delete this view", key="orders_saved_view_delete", icon=":material/delete:"):
        _run(lambda: saved_views.delete_view(db, actor, view.id), f"Deleted the view “{view.name}”.")
        st.session_state.pop(CURRENT, None)
        st.session_state.pop("orders_saved_view_pick", None)
        st.rerun()


def column_picker(db, actor: Actor, columns: list[str]) -> None:
    """Shown columns in the order picked; kept for this person on every page and sign-in."""
    picked = st.multiselect(
        "Columns, in order",
        list(saved_views.ORDER_LIST_COLUMNS),
        default=columns,
        key="orders_columns_pick",
        format_func=order_grid.COLUMN_LABELS.get,
        help="The order number and the tick box are always shown. Remove and add a column to move it last.",
    )
    left, right = st.columns(2)
    if left.button("Save columns", key="orders_columns_save", type="primary", width="stretch"):
        try:
            saved_views.save_column_choice(db, actor, picked)
        except OrdersError as error:
            st.error(display.escape_markdown(error))
            return
        st.session_state.pop(COLUMNS_OVERRIDE, None)
        st.rerun()
    if right.button("Default columns", key="orders_columns_reset", width="stretch"):
        saved_views.reset_column_choice(db, actor)
        st.session_state.pop(COLUMNS_OVERRIDE, None)
        st.session_state.pop("orders_columns_pick", None)
        st.rerun()
