"""Orders Desk: the frame and navigation. Every page is a short script in pages/.

Served by app.py (st.App): a browser without a session never reaches a staff page
(the page gate sends it to /sign-in first). Each run reads the session again, so a
tab whose session ended since (signed out elsewhere, deactivated, a new role) shows
why and the sign-in form at its next click, and nothing it clicked is done."""

from __future__ import annotations

from html import escape

import streamlit as st

from orders_core.authentication import SessionEnded, SignedIn
from orders_core.config import load_settings
from orders_core.staff import Permission
from orders_web import sso
from orders_web.paths import PUBLIC_PAGES, SIGN_IN, SIGN_OUT, SSO_START, STAFF_PAGES, safe_next
from pages import account_page
from pages.ui import job_watch, plain_text, resources, session

st.set_page_config(page_title="Orders Desk", page_icon="📦", layout="wide")


def start_embedded_worker() -> None:
    """One background worker per server process (app.py starts it at start-up too)."""
    from orders_core.job_engine import ensure_embedded_worker

    ensure_embedded_worker(resources.get_db().url)


# (page file, title, icon) by the key of its url_path in orders_web.paths.
STAFF_PAGE_FILES = {
    "orders": ("pages/orders_page.py", "Orders", ":material/receipt_long:"),
    "order": ("pages/order_detail.py", "Order", ":material/description:"),
    "jobs": ("pages/jobs_page.py", "Jobs", ":material/pending_actions:"),
    "analytics": ("pages/analytics_page.py", "Analytics", ":material/insights:"),
    "staff": ("pages/staff_page.py", "Staff", ":material/group:"),
    "account": ("pages/account_page.py", "My account", ":material/account_circle:"),
    "reconciliation": ("pages/reconciliation_page.py", "Reconciliation", ":material/balance:"),
    "stripe_events": ("pages/stripe_events_page.py", "Stripe events", ":material/webhook:"),
}
HIDDEN_IN_MENU = {"order"}


def checkout_page() -> st.Page:
    return st.Page(
        "pages/checkout_page.py",
        title="Demo checkout",
        icon=":material/shopping_cart:",
        url_path=PUBLIC_PAGES["checkout"],
    )


def staff_pages(account) -> list[st.Page]:
    pages = []
    for key, (script, title, icon) in STAFF_PAGE_FILES.items():
        hidden = (
            key in HIDDEN_IN_MENU
            or (key == "staff" and not account.as_actor().can(Permission.MANAGE_STAFF))
            or (key == "reconciliation" and not account.as_actor().can(Permission.RECONCILE))
        )
        pages.append(
            st.Page(
                script,
                title=title,
                icon=icon,
                url_path=STAFF_PAGES[key],
                default=key == "orders",
                visibility="hidden" if hidden else "visible",
            )
        )
    return pages


def stand_in_pages(render, title: str) -> list[st.Page]:
    """Every staff URL answered by one view (sign in again; change your password
    first), so a reload or a link keeps its URL and never shows "Page not found"."""
    pages = []
    for key in STAFF_PAGE_FILES:

        def view(render=render):
            render()

        view.__name__ = f"stand_in_{key}"
        pages.append(
            st.Page(
                view,
                title=title,
                icon=":material/lock:",
                url_path=STAFF_PAGES[key],
                default=key == "orders",
                visibility="hidden" if key != "orders" else "visible",
            )
        )
    return pages


def sign_in_again(state: SessionEnded | None) -> None:
    """The open tab of a session that has ended: why, and the sign-in form."""
    st.title("Orders Desk")
    if isinstance(state, SessionEnded):
        st.error(
            f"Your session has ended: {plain_text.markdown_literal(state.reason)}.",
            icon=":material/lock_clock:",
        )
    else:
        st.info("Sign in to use Orders Desk.", icon=":material/login:")
    next_path = safe_next(session.current_path())
    csrf = session.csrf_value()
    if csrf and load_settings().password_sign_in:
        st.html(sign_in_form_html(csrf, next_path))
    for name, label in sso.providers():
        st.link_button(
            f"Sign in with {label}",
            f"{SSO_START}?provider={_quote(name)}&next={_quote(next_path)}",
            icon=":material/key:",
        )
    st.link_button(
        "Open the sign-in page",
        f"{SIGN_IN}?next={_quote(next_path)}",
        icon=":material/login:",
        type="tertiary",
    )


def sign_in_form_html(csrf: str, next_path: str) -> str:
    """The same form as /sign-in, posting there: the password never enters the script."""
    field = (
        "display:block;width:100%;max-width:360px;box-sizing:border-box;padding:8px 10px;"
        "margin:4px 0 12px;border:1px solid #d5d7de;border-radius:8px;font-size:1rem"
    )
    return (
        f'<form method="post" action="{SIGN_IN}" class="od-sign-in">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        f'<label for="od-email">Email</label><input id="od-email" type="email" name="email" '
        f'required autocomplete="username" style="{field}">'
        f'<label for="od-password">Password</label><input id="od-password" type="password" '
        f'name="password" required autocomplete="current-password" style="{field}">'
        '<button type="submit" style="padding:8px 18px;border-radius:8px;border:1px solid #ff4b4b;'
        'background:#ff4b4b;color:#fff;font-size:1rem;cursor:pointer">Sign in</button></form>'
    )


def sign_out_form_html(csrf: str) -> str:
    return (
        f'<form method="post" action="{SIGN_OUT}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        '<button type="submit" id="od-sign-out" style="padding:4px 12px;border-radius:8px;'
        'border:1px solid #d5d7de;background:transparent;cursor:pointer;font-size:.9rem">'
        "Sign out</button></form>"
    )


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def sidebar(signed_in: SignedIn) -> None:
    account = signed_in.account
    with st.sidebar:
        # Names and emails are shown as text, never interpreted as markdown or links.
        st.text(account.name)
        st.text(f"{account.email} · {account.role.label}")  # st.caption would link the email
        csrf = session.csrf_value()
        if csrf:
            st.html(sign_out_form_html(csrf))
        elif st.button("Sign out", key="sign_out"):  # no cookie to echo (a test run)
            session.sign_out_here(signed_in)
            st.rerun()


start_embedded_worker()
state = session.sign_in_state()
if not isinstance(state, SignedIn):
    navigation = st.navigation(stand_in_pages(lambda: sign_in_again(state), "Sign in") + [checkout_page()])
elif state.account.password_must_change:
    sidebar(state)
    navigation = st.navigation(
        stand_in_pages(lambda: account_page.must_change_password(state), "Change your password")
        + [checkout_page()]
    )
else:
    st.session_state.pop(session.ENDED_RERUN_KEY, None)
    sidebar(state)
    job_watch.watch_my_jobs(resources.get_db())  # a toast when a job of theirs finishes
    navigation = st.navigation(staff_pages(state.account) + [checkout_page()])
navigation.run()
