"""Jobs the signed-in person started, watched from every page: when one finishes, a
toast says so with a link to it, and the whole app reruns once so that whatever page is
open (the orders list and its tab counts, above all) shows the orders as they are now.

The frame (streamlit_app.py) calls `watch_my_jobs` on every run; a page that queues a
job calls `watch_job` so that even a job that finishes before the next run gets its toast.
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


def watch_job(job_id: int) -> None:
    """Toast when job `job_id` finishes (it was just queued from this tab)."""
    st.session_state[WATCHED] = sorted(set(st.session_state.get(WATCHED, [])) | {int(job_id)})


def toast_text(job: JobView) -> str:
    """ "Job #9 finished: 1,286 fulfilled, 0 failed. [Open job #9](/jobs?job=9)"."""
    return f"{markdown_literal(job_outcomes.finished_summary(job))} [Open job #{job.id}](/jobs?job={job.id})"


def watch_my_jobs(db) -> None:
    """Toast the jobs that finished since the last run (this run shows the page as they
    left it); keep polling the rest."""
    for text, icon in st.session_state.pop(TOASTS, []):
        st.toast(text, icon=icon, duration="long")
    account = session.signed_in_staff()
    if account is None:
        return
    actor = account.as_actor()
    mine = job_outcomes.active_jobs_of(db, actor=actor)
    watched = sorted(set(st.session_state.get(WATCHED, [])) | set(mine))
    for text, icon in _take_finished(db, actor, watched):
        st.toast(text, icon=icon, duration="long")
    if st.session_state[WATCHED]:
        with st.sidebar:
            poll_watched(db)


def _take_finished(db, actor, watched: list[int]) -> list[tuple[str, str]]:
    """The toasts of the watched jobs that have finished; the others stay watched."""
    views = job_outcomes.jobs_by_id(db, watched, actor=actor)
    st.session_state[WATCHED] = [job.id for job in views if not job.finished]
    return [
        (toast_text(job), TOAST_ICONS.get(job.status, ":material/info:")) for job in views if job.finished
    ]


@st.fragment(run_every=POLL_SECONDS)
def poll_watched(db) -> None:
    """Each second: a finished job's toast is kept for the full rerun this starts, so that
    the page on screen (the orders list and its counts) shows the orders as it left them."""
    actor = session.current_actor()
    toasts = _take_finished(db, actor, st.session_state.get(WATCHED, []))
    if toasts:
        st.session_state[TOASTS] = st.session_state.get(TOASTS, []) + toasts
        st.rerun(scope="app")


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
