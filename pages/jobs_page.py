"""Jobs: bulk actions and exports, newest first; one job's detail with ?job=ID.

Everything shown is re-read from the database (orders_core.jobs), so a reload shows
the same state; while a job is queued or running, its part of the page refreshes
itself every few seconds (st.fragment(run_every=...)).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from orders_core import jobs
from orders_core.clock import utcnow
from orders_core.csv_cells import csv_bytes
from orders_core.errors import NotFound, OrdersError
from orders_core.staff import Actor, Permission
from pages.ui import display, links, resources, session

REFRESH_SECONDS = 3
LIST_LIMIT = 50
FAILURES_SHOWN = 1000

STATUS_STYLE = {  # label, badge colour, icon
    "queued": ("Queued", "gray", ":material/schedule:"),
    "running": ("Running", "blue", ":material/autorenew:"),
    "completed": ("Completed", "green", ":material/check_circle:"),
    "completed_with_failures": ("Completed with failures", "orange", ":material/warning:"),
    "failed": ("Failed", "red", ":material/error:"),
    "canceled": ("Canceled", "gray", ":material/cancel:"),
}
ACTION_STYLE = {
    "export": ("Export to CSV", ":material/download:"),
    "fulfill": ("Fulfill orders", ":material/local_shipping:"),
    "cancel": ("Cancel orders", ":material/block:"),
    "return": ("Return orders", ":material/undo:"),
    "reconcile": ("Reconcile with the gateway", ":material/balance:"),
}


# -- small formatting helpers ------------------------------------------------------------


def status_label(status: str) -> str:
    return STATUS_STYLE.get(status, (status.replace("_", " ").capitalize(),))[0]


def status_badge(status: str, *, cancel_requested: bool = False) -> None:
    label, color, icon = STATUS_STYLE.get(status, (status_label(status), "gray", None))
    if cancel_requested and status in ("queued", "running"):
        label, color, icon = "Canceling", "orange", ":material/cancel:"
    st.badge(label, color=color, icon=icon)


def action_label(action: str) -> str:
    return ACTION_STYLE.get(action, (action.capitalize(), None))[0]


def action_icon(action: str) -> str | None:
    return ACTION_STYLE.get(action, (None, None))[1]


def when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC")


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - value).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None:
        return "—"
    seconds = max(0, int(((end or utcnow()) - start).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds // 60 % 60} min"


def size(n: int | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def counts_text(job) -> str:
    parts = [
        f"{job.succeeded + job.failed:,} of {job.total:,} done",
        f"{job.succeeded:,} succeeded",
        f"{job.failed:,} failed",
    ]
    if job.pending and job.finished:
        parts.append(f"{job.pending:,} not processed")
    elif job.pending:
        parts.append(f"{job.pending:,} pending")
    return " · ".join(parts)


def parse_job_param(raw) -> tuple[int | None, str | None]:
    """The job id of ?job=…, or a notice saying why it cannot be used."""
    if isinstance(raw, (list, tuple)):
        raw = raw[-1] if raw else None
    if raw is None or str(raw).strip() == "":
        return None, None
    text = str(raw).strip().lstrip("#")
    if re.fullmatch(r"\d{1,10}", text) and 1 <= int(text) <= 2**31 - 1:
        return int(text), None
    return None, f"Ignored job={str(raw)[:40]!r}: a job is a number such as 12."


# -- list ---------------------------------------------------------------------------------


def job_row(job) -> None:
    with st.container(border=True, key=f"job_row_{job.id}"):
        title_col, status_col, progress_col, link_col = st.columns(
            [3, 2, 4, 1.2], vertical_alignment="center"
        )
        with title_col:
            st.markdown(f"**#{job.id} · {action_label(job.action)}**")
            st.caption(
                f"{display.escape_markdown(job.actor)} · {when(job.created_at)} ({ago(job.created_at)})"
            )
        with status_col:
            status_badge(job.status, cancel_requested=job.cancel_requested)
        with progress_col:
            st.progress(job.progress, text=counts_text(job))
        with link_col:
            st.page_link(
                links.JOBS_PAGE,
                label="Open",
                icon=":material/open_in_new:",
                query_params={"job": str(job.id)},
            )


def job_list(db, actor: Actor) -> None:
    views = jobs.list_jobs(db, actor=actor, limit=LIST_LIMIT)
    active = any(not job.finished for job in views)
    if not views:
        st.info(
            "No jobs yet. Bulk actions and exports started from the Orders page appear "
            "here with their progress.",
            icon=":material/inbox:",
        )
        return

    @st.fragment(run_every=REFRESH_SECONDS if active else None)
    def live_list() -> None:
        actor = session.current_actor()  # each refresh: a session that ended reruns the whole app
        fresh = jobs.list_jobs(db, actor=actor, limit=LIST_LIMIT)
        running = sum(1 for job in fresh if not job.finished)
        summary = st.columns(3)
        summary[0].metric("Jobs shown", f"{len(fresh):,}")
        summary[1].metric("Queued or running", f"{running:,}")
        summary[2].metric("With failures", f"{sum(1 for j in fresh if j.failed):,}")
        if running:
            st.caption(
                f":material/autorenew: Refreshing every {REFRESH_SECONDS} seconds while "
                f"jobs are queued or running."
            )
        for job in fresh:
            job_row(job)
        if active and not running:
            st.rerun()  # everything finished: one full run turns the auto-refresh off

    live_list()


# -- detail -------------------------------------------------------------------------------


def read_file_bytes(path: str):
    return lambda: Path(path).read_bytes()


def failures_csv(db, actor: Actor, job_id: int):
    def build() -> bytes:
        return csv_bytes(
            pd.DataFrame(jobs.job_failures(db, job_id, actor=actor), columns=["order", "reason"])
        )

    return build


def job_detail(db, actor: Actor, job_id: int) -> None:
    st.page_link(links.JOBS_PAGE, label="All jobs", icon=":material/arrow_back:")
    try:
        first = jobs.get_job(db, job_id, actor=actor)
    except NotFound:
        st.warning(
            f"There is no job #{job_id}. It may have been typed wrongly in the address.",
            icon=":material/search_off:",
        )
        return
    st.header(f"Job #{first.id} · {action_label(first.action)}", anchor=False)
    manage = session.can(Permission.MANAGE_JOBS)

    @st.fragment(run_every=None if first.finished else REFRESH_SECONDS)
    def live_detail() -> None:
        actor = session.current_actor()  # each refresh: a session that ended reruns the whole app
        try:
            job = jobs.get_job(db, job_id, actor=actor)
        except NotFound:
            st.warning(f"Job #{job_id} no longer exists.")
            return
        head_col, badge_col = st.columns([6, 2], vertical_alignment="center")
        with head_col:
            st.caption(
                f"Asked for by {display.escape_markdown(job.actor)} · "
                f"{when(job.created_at)} ({ago(job.created_at)})"
            )
        with badge_col:
            status_badge(job.status, cancel_requested=job.cancel_requested)

        st.progress(job.progress, text=f"{job.progress:.0%} · {counts_text(job)}")
        metrics = st.columns(5)
        metrics[0].metric("Orders", f"{job.total:,}")
        metrics[1].metric("Succeeded", f"{job.succeeded:,}")
        metrics[2].metric("Failed", f"{job.failed:,}")
        metrics[3].metric("Pending", f"{job.pending:,}")
        metrics[4].metric("Run time", duration(job.started_at, job.finished_at))

        if job.cancel_requested and not job.finished:
            st.info("Cancel requested: the job stops after the orders in progress.", icon=":material/cancel:")
        if job.error:
            st.error(display.escape_markdown(job.error))

        with st.container(border=True):
            st.caption("Selection")
            st.text(job.selection or "—")
            if job.reason:
                st.caption("Reason")
                st.text(job.reason)
            facts = st.columns(3)
            facts[0].caption(f"Started: {when(job.started_at)}")
            facts[1].caption(f"Finished: {when(job.finished_at)}")
            if job.retry_of:
                with facts[2]:
                    st.page_link(
                        links.JOBS_PAGE,
                        label=f"Retry of job #{job.retry_of}",
                        icon=":material/replay:",
                        query_params={"job": str(job.retry_of)},
                    )

        with st.container(horizontal=True, key="job_actions"):
            if manage:
                actions(db, actor, job)
            downloads(db, actor, job)
        failures(db, actor, job)
        if not job.finished:
            st.caption(
                f":material/autorenew: Refreshing every {REFRESH_SECONDS} seconds until the job finishes."
            )
        elif not first.finished:
            st.rerun()  # it just finished: one full run turns the auto-refresh off

    live_detail()


def actions(db, actor: Actor, job) -> None:
    retry = st.button(
        "Retry failed",
        key="job_retry_failed",
        icon=":material/replay:",
        disabled=not (job.finished and job.failed > 0),
        help="Queue a new job over this job's failed orders only.",
    )
    cancel = st.button(
        "Cancel job",
        key="job_cancel",
        icon=":material/cancel:",
        disabled=job.finished or job.cancel_requested,
        help="Stop the job: orders already done stay done; the rest are not processed.",
    )
    if retry:
        try:
            new = jobs.retry_failed(db, actor, job.id)
        except OrdersError as error:
            st.error(display.escape_markdown(error))
        else:
            st.session_state["jobs_notice"] = (
                f"Job #{new.id} was queued to retry the {new.total:,} failed orders of job #{job.id}."
            )
            st.query_params["job"] = str(new.id)
            st.rerun()
    if cancel:
        try:
            jobs.cancel_job(db, actor, job.id)
        except OrdersError as error:
            st.error(display.escape_markdown(error))
        else:
            st.session_state["jobs_notice"] = f"Cancel requested for job #{job.id}."
            st.rerun()


def downloads(db, actor: Actor, job) -> None:
    if job.export_path and job.finished:
        path = Path(job.export_path)
        if path.is_file():
            st.download_button(
                f"Download export CSV ({(job.export_rows or 0):,} rows, {size(job.export_bytes)})",
                data=read_file_bytes(str(path)),
                file_name=path.name,
                mime="text/csv",
                key="job_export_download",
                icon=":material/download:",
                on_click="ignore",
                type="primary",
            )
        else:
            st.warning("The export file is no longer on the server.", icon=":material/draft:")
    if job.failed:
        st.download_button(
            f"Download failures CSV ({job.failed:,} orders)",
            data=failures_csv(db, actor, job.id),
            file_name=f"job-{job.id}-failures.csv",
            mime="text/csv",
            key="job_failures_download",
            icon=":material/download:",
            on_click="ignore",
        )


def failures(db, actor: Actor, job) -> None:
    st.subheader("Failures", anchor=False)
    if not job.failed:
        st.caption("No order failed." if job.finished or job.succeeded else "No failures so far.")
        return
    rows = jobs.job_failures(db, job.id, actor=actor, limit=FAILURES_SHOWN)
    frame = pd.DataFrame(rows, columns=["order", "reason"]).rename(
        columns={"order": "Order", "reason": "Reason"}
    )
    if job.failed > len(rows):
        st.caption(f"The first {len(rows):,} of {job.failed:,} failures; download the CSV for all of them.")
    else:
        st.caption("Select a row to open the order.")
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key="job_failures_table",
        on_select="rerun",
        selection_mode="single-row",
    )
    selected = event.selection.rows if event is not None else []
    if selected:
        number = frame.iloc[selected[0]]["Order"]
        st.switch_page(links.ORDER_PAGE, query_params={"number": number})


# -- page ---------------------------------------------------------------------------------


def main() -> None:
    actor = session.current_actor()  # stops the page unless a staff member is signed in
    st.title("Jobs")
    st.caption(
        "Bulk actions and exports, newest first. Jobs run in the background; leave and come back at any time."
    )
    notice = st.session_state.pop("jobs_notice", None)
    if notice:
        st.success(display.escape_markdown(notice), icon=":material/check_circle:")

    db = resources.get_db()
    selected_job, problem = parse_job_param(st.query_params.get("job"))
    if problem:
        st.warning(display.escape_markdown(problem))
        del st.query_params["job"]
    if selected_job is not None:
        st.query_params["job"] = str(selected_job)  # canonical, and shown in the address bar
        job_detail(db, actor, selected_job)
    else:
        job_list(db, actor)


if __name__ == "__main__":
    main()
