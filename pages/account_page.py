"""My account: change your password, see where you are signed in, sign out everywhere
else. Also the view a person with a temporary password sees until they replace it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orders_core.authentication import SignedIn
from orders_core.errors import OrdersError
from orders_core.staff import change_own_password, sign_out_everywhere, staff_sessions_of
from pages.ui import display, resources, session

NOTICE = "account_notice"


def password_form(state: SignedIn, *, key: str, current_label: str) -> bool:
    """Current and new password; True once changed (the other sessions have ended)."""
    with st.form(key, border=True):
        current = st.text_input(current_label, type="password", key=f"{key}_current")
        new = st.text_input("New password", type="password", key=f"{key}_new", help="At least 8 characters.")
        repeat = st.text_input("New password again", type="password", key=f"{key}_repeat")
        submitted = st.form_submit_button(
            "Change password", type="primary", key=f"{key}_submit", icon=":material/key:"
        )
    if not submitted:
        return False
    if new != repeat:
        st.error("The two new passwords differ.", icon=":material/error:")
        return False
    try:
        change_own_password(
            resources.get_db(),
            state.account.as_actor(),
            current,
            new,
            keep_session_id=state.session.id,
            client_address=session.client_address(),
        )
    except OrdersError as error:
        st.error(display.escape_markdown(error), icon=":material/error:")
        return False
    for suffix in ("current", "new", "repeat"):
        st.session_state.pop(f"{key}_{suffix}", None)
    return True


def must_change_password(state: SignedIn) -> None:
    st.title("Choose your own password")
    st.info(
        "An admin set a temporary password for you. Choose your own password to go on.", icon=":material/key:"
    )
    left, _ = st.columns([1, 1])
    with left:
        if password_form(state, key="first_password", current_label="Temporary password"):
            st.rerun()


def sessions_table(state: SignedIn) -> None:
    rows = staff_sessions_of(resources.get_db(), state.account.as_actor(), state.account.email)
    frame = pd.DataFrame(
        [
            {
                "This browser": "✓" if s.id == state.session.id else "",
                "Signed in (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M"),
                "Last seen (UTC)": s.last_seen_at.strftime("%Y-%m-%d %H:%M"),
                "Browser": display.browser_label(s.user_agent),
                "Address": s.client_address,
                "How": "Password" if s.method == "password" else s.method.replace("sso:", "Single sign-on: "),
            }
            for s in rows
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="account_sessions")


def main() -> None:
    state = session.signed_in()
    if state is None:
        st.stop()
    st.title("My account")
    st.text(f"{state.account.email} · {state.account.role.label}")  # plain: never a mailto link
    message = st.session_state.pop(NOTICE, None)
    if message:
        st.success(display.markdown_with_plain_emails(message), icon=":material/check_circle:")
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Change your password", anchor=False)
        if password_form(state, key="own_password", current_label="Current password"):
            st.session_state[NOTICE] = (
                "Password changed. Every other browser signed in as you has been signed out."
            )
            st.rerun()
    with right:
        st.subheader("Where you are signed in", anchor=False)
        sessions_table(state)
        if st.button("Sign out everywhere else", key="account_sign_out_elsewhere", icon=":material/logout:"):
            ended = sign_out_everywhere(
                resources.get_db(),
                state.account.as_actor(),
                state.account.email,
                keep_session_id=state.session.id,
                client_address=session.client_address(),
            )
            st.session_state[NOTICE] = (
                f"Signed out {ended} other session{'s' if ended != 1 else ''}."
                if ended
                else "No other browser was signed in as you."
            )
            st.rerun()


if __name__ == "__main__":
    main()
