"""Jobs the signed-in person started, watched from every page: when one finishes, a
toast says so with a link to it, and the whole app reruns once so that whatever page is
open (the orders list and its tab counts, above all) shows the orders as they are now.

The frame (streamlit_app.py) calls `watch_my_jobs` on every run; a page that queues a
job calls `watch` so that even a job that finishes before the next run gets its toast.
The watch list is this browser tab's; the jobs themselves are re-read each second."""

from __future__ import annotations

import streamlit as st

from orders_core import job_outcomes
from orders_core.errors import NotFound
from orders_core.jobs import JobView, get_job
from pages.ui import session
from pages.ui.plain_text import markdown_literal

WATCHED = "job_watch_ids"
TOASTS = "job_watch_toasts"
POLL_SECONDS = 1

TOAST_ICONS = {
    "completed": ":material/check_circle:",
    "completed_with_failures": ":material/warning:",
    "failed": ":material/error:",
    "canceled": ":material/cancel:",
}


def watch(job_id: int) -> None:
    """Toast when job `job_id` finishes (it was just queued from this tab)."""
    st.session_state[WATCHED] = sorted(set(st.session_state.get(WATCHED, [])) | {int(job_id)})


def toast_text(job: JobView) -> str:
    """ "Job #9 finished: 1,286 fulfilled, 0 failed. [Open job #9](/jobs?job=9)"."""
    return f"{markdown_literal(job_outcomes.finished_summary(job))} [Open job #{job.id}](/jobs?job={job.id})"


def watch_my_jobs(db) -> None:
    """Show the toasts of jobs that finished since the last run; keep watching the rest."""
    for text, icon in st.session_state.pop(TOASTS, []):
        st.toast(text, icon=icon, duration="long")
    account = session.signed_in_staff()
    if account is None:
        return
    mine = job_outcomes.active_jobs_of(db, actor=account.as_actor())
    watched = sorted(set(st.session_state.get(WATCHED, [])) | set(mine))
    st.session_state[WATCHED] = watched
    if watched:
        with st.sidebar:
            poll_watched(db)


@st.fragment(run_every=POLL_SECONDS)
def poll_watched(db) -> None:
    actor = session.current_actor()
    watched = st.session_state.get(WATCHED, [])
    views = job_outcomes.jobs_by_id(db, watched, actor=actor)
    finished = [job for job in views if job.finished]
    if not finished and len(views) == len(watched):
        return
    st.session_state[TOASTS] = st.session_state.get(TOASTS, []) + [
        (toast_text(job), TOAST_ICONS.get(job.status, ":material/info:")) for job in finished
    ]
    st.session_state[WATCHED] = [job.id for job in views if not job.finished]
    st.rerun(scope="app")  # the page on screen shows the orders as the job left them


def flash_line(where, db, actor, job_id: int, what: str) -> None:
    """The orders page's line about the job just queued, true as of now: running, or
    how it ended."""
    try:
        job = get_job(db, job_id, actor=actor)
    except NotFound:
        where.warning(f"Job #{job_id} no longer exists.")
        return
    if not job.finished:
        where.success(
            f"Job #{job.id} is {job.status_label.lower()}: {markdown_literal(what)}.",
            icon=":material/pending_actions:",
        )
    elif job.status == "completed":
        where.success(markdown_literal(job_outcomes.finished_summary(job)), icon=TOAST_ICONS[job.status])
    else:
        where.warning(markdown_literal(job_outcomes.finished_summary(job)), icon=TOAST_ICONS.get(job.status))
