"""Orders Desk: sign-in gate and navigation. Every page is a short script in pages/."""
from __future__ import annotations

import streamlit as st

from orders_core.errors import OrdersError
from orders_core.staff import Permission, sign_in_staff
from pages import common

st.set_page_config(page_title="Orders Desk", page_icon="📦", layout="wide")


def start_embedded_worker() -> None:
    """One background worker per server process, started on first use."""
    try:
        from orders_core.worker import ensure_embedded_worker
    except ImportError:  # the job engine is optional until it lands
        return
    ensure_embedded_worker(common.get_db().url)


def sign_in_form() -> None:
    st.title("Orders Desk")
    st.caption("Staff sign-in")
    with st.form("staff_sign_in"):
        email = st.text_input("Email", key="sign_in_email")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            common.sign_in(sign_in_staff(common.get_db(), email, password))
        except OrdersError as error:
            st.error(str(error))
        else:
            st.rerun()


PAGES = {
    "orders": st.Page("pages/orders.py", title="Orders", icon=":material/receipt_long:",
                      url_path="orders", default=True),
    "order": st.Page("pages/order_detail.py", title="Order", icon=":material/description:",
                     url_path="order", visibility="hidden"),
    "jobs": st.Page("pages/jobs.py", title="Jobs", icon=":material/pending_actions:", url_path="jobs"),
    "analytics": st.Page("pages/analytics.py", title="Analytics", icon=":material/insights:",
                         url_path="analytics"),
    "checkout": st.Page("pages/checkout.py", title="Demo checkout", icon=":material/shopping_cart:",
                        url_path="checkout"),
    "staff": st.Page("pages/staff.py", title="Staff", icon=":material/group:", url_path="staff"),
}

start_embedded_worker()
st.session_state[common.ROUTED_KEY] = True
account = common.signed_in_staff()
if account is None:
    # The demo checkout is for anyone testing the shop; everything else needs staff sign-in.
    navigation = st.navigation([st.Page(sign_in_form, title="Sign in", icon=":material/login:", url_path="sign-in", default=True),
                                PAGES["checkout"]])
else:
    with st.sidebar:
        # Names and emails are shown as text, never interpreted as markdown or links.
        st.text(account.name)
        st.caption(f"{common.escape_markdown(account.email)} · {account.role.label}")
        if st.button("Sign out", key="sign_out"):
            common.sign_out()
            st.rerun()
    visible = [PAGES["orders"], PAGES["order"], PAGES["jobs"], PAGES["analytics"], PAGES["checkout"]]
    if account.as_actor().can(Permission.MANAGE_STAFF):
        visible.append(PAGES["staff"])
    navigation = st.navigation(visible)
wanted = st.session_state.pop(common.WANTED_PAGE_KEY, None)
if wanted in PAGES and navigation is not PAGES[wanted]:
    st.switch_page(PAGES[wanted])  # a first visit that came in through a page's own URL
navigation.run()
