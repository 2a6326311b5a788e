"""Staff accounts (admins only): who has access, with which role; create accounts,
change roles, deactivate and reactivate, set a temporary password, see and end each
person's sessions, and the audit log. orders_core.staff checks the permission again on
every change, and every change that withdraws access ends that person's sessions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from orders_core.errors import OrdersError
from orders_core.staff import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    audit_log,
    create_staff,
    list_staff,
    reset_staff_password,
    set_staff_active,
    set_staff_role,
    sign_out_everywhere,
    staff_sessions_of,
)
from pages.ui import display, resources, session

NOTICE = "staff_notice"
ROLE_SUMMARY = {
    Role.ANALYST: "View orders, jobs and analytics; export.",
    Role.SUPPORT: "Analyst, plus cancel and return orders and add staff notes.",
    Role.OPS: "Support, plus fulfil orders, take payments, cancel or retry jobs.",
    Role.ADMIN: "Everything, plus staff accounts.",
}


def role_label(role) -> str:
    return Role(role).label


def notice(text: str) -> None:
    st.session_state[NOTICE] = text


def accounts_table(accounts) -> None:
    frame = pd.DataFrame(
        [
            {
                "Name": a.name,
                "Email": a.email,
                "Role": a.role.label,
                "Status": "Active" if a.active else "Deactivated",
            }
            for a in accounts
        ],
        columns=["Name", "Email", "Role", "Status"],
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="staff_table")


def change_account(db, actor, accounts) -> None:
    st.subheader("Change an account", anchor=False)
    by_email = {a.email: a for a in accounts}
    with st.container(border=True):
        emails = list(by_email)
        others = [e for e in emails if e.lower() != actor.email.lower()]
        email = st.selectbox(
            "Account",
            emails,
            key="staff_pick",
            index=emails.index(others[0]) if others else 0,
            format_func=lambda e: f"{by_email[e].name} · {e}",
        )
        account = by_email[email]
        yourself = account.email.lower() == actor.email.lower()
        roles = [r.value for r in Role]
        new_role = st.selectbox(
            "Role",
            roles,
            index=roles.index(account.role.value),
            key=f"staff_role_{account.id}",
            format_func=role_label,
            disabled=yourself,
        )
        bar = st.container(horizontal=True)
        if bar.button(
            "Save role",
            key="staff_save_role",
            icon=":material/save:",
            type="primary",
            disabled=yourself or new_role == account.role.value,
        ):
            try:
                changed = set_staff_role(
                    db, actor, account.email, new_role, client_address=session.client_address()
                )
            except OrdersError as error:
                st.error(display.markdown_with_plain_emails(error))
            else:
                notice(f"{changed.email} is now {changed.role.label}; their sessions have ended.")
                st.rerun()
        label = "Deactivate" if account.active else "Reactivate"
        if bar.button(
            label,
            key="staff_toggle_active",
            disabled=yourself,
            icon=":material/person_off:" if account.active else ":material/person_check:",
        ):
            try:
                changed = set_staff_active(
                    db, actor, account.email, not account.active, client_address=session.client_address()
                )
            except OrdersError as error:
                st.error(display.markdown_with_plain_emails(error))
            else:
                state = "active again" if changed.active else "deactivated; their sessions have ended"
                notice(f"{changed.email} is {state}.")
                st.rerun()
        if yourself:
            st.caption("This is your own account: you cannot change its role or deactivate it.")
        elif not account.active:
            st.caption("A deactivated account cannot sign in.")
        account_sessions(db, actor, account)
        temporary_password(db, actor, account, yourself)


def account_sessions(db, actor, account) -> None:
    sessions = staff_sessions_of(db, actor, account.email)
    st.markdown(f"**Signed in:** {len(sessions)} session{'s' if len(sessions) != 1 else ''}")
    if sessions:
        frame = pd.DataFrame(
            [
                {
                    "Signed in (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M"),
                    "Last seen (UTC)": s.last_seen_at.strftime("%Y-%m-%d %H:%M"),
                    "Browser": display.browser_label(s.user_agent),
                    "Address": s.client_address,
                }
                for s in sessions
            ]
        )
        st.dataframe(frame, hide_index=True, width="stretch", key=f"staff_sessions_{account.id}")
    if st.button(
        "Sign out everywhere",
        key="staff_sign_out_everywhere",
        icon=":material/logout:",
        disabled=not sessions,
    ):
        try:
            ended = sign_out_everywhere(db, actor, account.email, client_address=session.client_address())
        except OrdersError as error:
            st.error(display.markdown_with_plain_emails(error))
        else:
            notice(f"Signed {account.email} out of {ended} session{'s' if ended != 1 else ''}.")
            st.rerun()


def temporary_password(db, actor, account, yourself: bool) -> None:
    if yourself:
        return
    with st.expander("Set a temporary password"):
        with st.form(f"staff_reset_{account.id}", border=False):
            password = st.text_input(
                "Temporary password",
                type="password",
                key="staff_reset_password",
                help="At least 8 characters. They must choose their own at "
                "their next sign-in; their sessions end now.",
            )
            submitted = st.form_submit_button("Set temporary password", key="staff_reset_submit")
        if submitted:
            try:
                reset_staff_password(
                    db, actor, account.email, password, client_address=session.client_address()
                )
            except OrdersError as error:
                st.error(display.markdown_with_plain_emails(error))
            else:
                st.session_state.pop("staff_reset_password", None)
                notice(
                    f"Temporary password set for {account.email}; they choose their own at "
                    "their next sign-in."
                )
                st.rerun()


def audit_table(db, actor) -> None:
    st.subheader("Audit log", anchor=False)
    st.caption("Sign-ins (successful or not), sign-outs, ended sessions and account changes; newest first.")
    entries = audit_log(db, actor, limit=300)
    frame = pd.DataFrame(
        [
            {
                "When (UTC)": e.at.strftime("%Y-%m-%d %H:%M:%S"),
                "Event": e.event.label,
                "Outcome": "OK" if e.success else "Refused",
                "Account": e.subject,
                "By": e.actor,
                "Detail": e.detail,
                "Address": e.client_address,
            }
            for e in entries
        ],
        columns=["When (UTC)", "Event", "Outcome", "Account", "By", "Detail", "Address"],
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="staff_audit_table", height=360)


def add_account(db, actor) -> None:
    st.subheader("Add a staff member", anchor=False)
    with st.form("staff_create_form", clear_on_submit=False, border=True):
        name_col, email_col = st.columns(2)
        name = name_col.text_input("Full name", key="staff_new_name", max_chars=200)
        email = email_col.text_input("Email", key="staff_new_email", max_chars=320)
        role_col, password_col = st.columns(2)
        role = role_col.selectbox(
            "Role", [r.value for r in Role], key="staff_new_role", format_func=role_label
        )
        password = password_col.text_input(
            "Initial password",
            type="password",
            key="staff_new_password",
            help="At least 8 characters; share it privately.",
        )
        submitted = st.form_submit_button(
            "Create account", type="primary", key="staff_create", icon=":material/person_add:"
        )
    if submitted:
        try:
            created = create_staff(db, actor, email=email, name=name, role=role, password=password)
        except OrdersError as error:
            st.error(display.markdown_with_plain_emails(error))
        else:
            for key in ("staff_new_name", "staff_new_email", "staff_new_password"):
                st.session_state.pop(key, None)
            notice(f"Created {created.email} ({created.role.label}).")
            st.rerun()


def roles_help() -> None:
    with st.expander("What each role can do"):
        frame = pd.DataFrame(
            [
                {
                    "Role": role.label,
                    "Summary": ROLE_SUMMARY[role],
                    "Permissions": ", ".join(p.value for p in Permission if p in ROLE_PERMISSIONS[role]),
                }
                for role in Role
            ]
        )
        st.dataframe(frame, hide_index=True, width="stretch")


def main() -> None:
    actor = session.current_actor()
    st.title("Staff")
    if not session.can(Permission.MANAGE_STAFF):
        st.error("Only admins manage staff accounts.", icon=":material/lock:")
        st.stop()
    st.caption(
        "Who can sign in to Orders Desk, and with which role. Roles nest: analyst → support → ops → admin."
    )
    message = st.session_state.pop(NOTICE, None)
    if message:
        st.success(display.markdown_with_plain_emails(message), icon=":material/check_circle:")
    db = resources.get_db()
    accounts = list_staff(db, actor)
    cols = st.columns(3)
    cols[0].metric("Active accounts", f"{sum(a.active for a in accounts):,}")
    cols[1].metric("Admins", f"{sum(a.active and a.role == Role.ADMIN for a in accounts):,}")
    cols[2].metric("Deactivated", f"{sum(not a.active for a in accounts):,}")
    accounts_table(accounts)
    roles_help()
    left, right = st.columns(2, gap="large")
    with left:
        if accounts:
            change_account(db, actor, accounts)
    with right:
        add_account(db, actor)
    audit_table(db, actor)


if __name__ == "__main__":
    main()
