"""The reason a mass move asks for (orders_core.jobs.reason_problem decides when one is
required: a mass Cancel or Return), as the order page's single moves ask for theirs.

The confirm button stays enabled: a text area sends its text with the click that
follows, so a reason typed and then confirmed counts; a missing one is refused at the
field, and nothing is queued."""

from __future__ import annotations

import streamlit as st

from orders_core import jobs, lifecycle

KEY = "mass_reason"


def reason_input(action: str):
    """(the typed reason, a slot under the field for its error); nothing for an export."""
    if jobs.JobAction.parse(action) is jobs.JobAction.EXPORT:
        return "", None
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
    return (reason or "").strip(), st.empty()


def reason_refused(action: str, reason: str, slot) -> bool:
    """True (and says why, at the field) when the reason will not do."""
    problem = jobs.reason_problem(action, reason)
    if problem and slot is not None:
        slot.error(problem, icon=":material/edit_note:")
    return problem is not None


def forget_reason() -> None:
    st.session_state.pop(KEY, None)
