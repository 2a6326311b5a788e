"""Who is signed in: the server-side session named by this browser's cookie.

Read again on every call (an indexed look-up of the session and of the account), never
kept in st.session_state: a deactivation or a new role counts at the very next click,
in every tab, on every app server."""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st

from orders_core import authentication
from orders_core.authentication import SessionEnded, SignedIn
from orders_core.staff import Actor, Permission, StaffAccount
from orders_web import cookies
from pages.ui.resources import get_db

CUSTOMER_KEY = "customer_account"  # the demo checkout's signed-in customer
ENDED_RERUN_KEY = "_rerun_for_ended_session"


def sign_in_state() -> SignedIn | SessionEnded | None:
    return authentication.current_session(get_db(), st.context.cookies.get(cookies.SESSION))


def signed_in() -> SignedIn | None:
    state = sign_in_state()
    return state if isinstance(state, SignedIn) else None


def signed_in_staff() -> StaffAccount | None:
    state = signed_in()
    return state.account if state is not None else None


def current_actor() -> Actor:
    """The signed-in staff member as an Actor, read again now. Call it first in every
    page, fragment and dialog: a fragment's rerun does not run the entry point, so a
    session that ended meanwhile reruns the whole app, which shows why."""
    account = signed_in_staff()
    if account is None:
        # Once: the entry point then shows why (and clears the mark when signed in).
        # A page run without the entry point (a test) stops here instead of looping.
        if not st.session_state.get(ENDED_RERUN_KEY):
            st.session_state[ENDED_RERUN_KEY] = True
            st.rerun(scope="app")
        st.warning("Your session has ended. Reload the page to sign in again.")
        st.stop()
    return account.as_actor()


def can(permission: Permission) -> bool:
    """For what a page shows; the services check again."""
    account = signed_in_staff()
    return account is not None and account.as_actor().can(permission)


def client_address() -> str:
    return st.context.ip_address or ""


def csrf_value() -> str:
    """This browser's od_csrf cookie, which forms posting to our routes echo."""
    return st.context.cookies.get(cookies.CSRF) or ""


def current_path() -> str:
    """This page's path and query, for a sign-in to come back to."""
    parts = urlsplit(st.context.url or "")
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def sign_out_here(state: SignedIn) -> None:
    """End this browser's session on the server (the sidebar's fallback without a form)."""
    authentication.sign_out(
        get_db(), st.context.cookies.get(cookies.SESSION), client_address=client_address()
    )
