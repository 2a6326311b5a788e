"""The reason a mass move asks for (orders_core.jobs.reason_problem decides when one is
required: a mass Cancel or Return), as the order page's single moves ask for theirs."""

from __future__ import annotations

import streamlit as st

from orders_core import jobs, lifecycle

KEY = "mass_reason"


def reason_input(action: str) -> tuple[str, bool]:
    """The typed reason and whether it will do; nothing asked of an export."""
    if jobs.JobAction.parse(action) is jobs.JobAction.EXPORT:
        return "", True
    required = jobs.JobAction.parse(action) in jobs.REASON_REQUIRED
    reason = st.text_area(
        "Reason (required: it goes in each order's timeline)"
        if required
        else "Reason (optional, goes in each order's timeline)",
        key=KEY,
        max_chars=lifecycle.MAX_REASON,
        height=80,
        placeholder="e.g. Customer request by phone; warehouse out of stock",
    )
    problem = jobs.reason_problem(action, reason)
    if problem and reason:  # typed only blanks
        st.caption(problem)
    return reason.strip(), problem is None


def forget() -> None:
    st.session_state.pop(KEY, None)
