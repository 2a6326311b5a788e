"""What every page shares: the database, the gateways, the signed-in staff member.

Process-wide resources are cached with st.cache_resource (one per server process,
not per browser session); the signed-in person lives in st.session_state."""
from __future__ import annotations

import streamlit as st

from orders_core.db import Database, open_database
from orders_core.money import format_money
from orders_core.payments import Gateways
from orders_core.staff import Actor, Permission, StaffAccount

STAFF_KEY = "staff_account"
CUSTOMER_KEY = "customer_account"


@st.cache_resource(show_spinner=False)
def get_db() -> Database:
    return open_database()


@st.cache_resource(show_spinner=False)
def get_gateways() -> Gateways:
    return Gateways(get_db())


def signed_in_staff() -> StaffAccount | None:
    return st.session_state.get(STAFF_KEY)


def sign_in(account: StaffAccount) -> None:
    st.session_state[STAFF_KEY] = account


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_actor() -> Actor:
    """The signed-in staff member as an Actor; stops the page if nobody is signed in."""
    account = signed_in_staff()
    if account is None:
        st.warning("Sign in first.")
        st.stop()
    return account.as_actor()


def can(permission: Permission) -> bool:
    account = signed_in_staff()
    return account is not None and account.as_actor().can(permission)


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)
