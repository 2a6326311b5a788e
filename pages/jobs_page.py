"""Jobs: bulk actions and exports, newest first; one job's detail with ?job=ID.

Everything shown is re-read from the database (orders_core.jobs, job_outcomes), so a
reload shows the same state. While a job is queued or running, its page and the list
refresh themselves every second (st.fragment(run_every=...)) from the progress the
worker stores at each chunk; with nothing running, the list only looks for new jobs
every IDLE_SECONDS and the job page stops polling.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from orders_core import job_outcomes, jobs
from orders_core.clock import utcnow
from orders_core.csv_cells import csv_bytes
from orders_core.errors import NotFound, OrdersError, ValidationError
from orders_core.staff import Actor, Permission
from pages.ui import display, job_watch, links, resources, session
from pages.ui.plain_text import markdown_literal

REFRESH_SECONDS = 1  # while a job is queued or running
IDLE_SECONDS = 10  # the list, with nothing running: new jobs by others appear
LIST_LIMIT = 50
ITEMS_PAGE_SIZE = 100
NOTICE = "jobs_notice"  # (kind, text) shown once at the top of the page
OUTCOME_FILTERS = {"all": "All", "succeeded": "Succeeded", "failed": "Failed", "pending": "Not processed"}
OUTCOME_CELLS = {
    "succeeded": ":green[:material/check_circle: Succeeded]",
    "failed": ":red[:material/error: Failed]",
    "pending": ":gray[:material/radio_button_unchecked: Not processed]",
}

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
        f":red[{job.failed:,} failed]" if job.failed else "0 failed",  # failures stand out
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
            st.text(f"{job.actor} · {when(job.created_at)} ({ago(job.created_at)})")  # an email: text
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
    newest = views[0].id if views else 0

    @st.fragment(run_every=REFRESH_SECONDS if active else IDLE_SECONDS)
    def live_list() -> None:
        actor = session.current_actor()  # each refresh: a session that ended reruns the whole app
        fresh = jobs.list_jobs(db, actor=actor, limit=LIST_LIMIT)
        running = sum(1 for job in fresh if not job.finished)
        if not fresh:
            st.info(
                "No jobs yet. Bulk actions and exports started from the Orders page appear "
                "here with their progress.",
                icon=":material/inbox:",
            )
            return
        summary = st.columns(3)
        summary[0].metric("Jobs shown", f"{len(fresh):,}")
        summary[1].metric("Queued or running", f"{running:,}")
        summary[2].metric("With failures", f"{sum(1 for j in fresh if j.failed):,}")
        if running:
            st.caption(":material/autorenew: Live: progress updates every second while jobs run.")
        for job in fresh:
            job_row(job)
        if bool(running) != active or (not active and fresh[0].id != newest):
            st.rerun()  # started or all finished: one full run sets the refresh rate

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


def items_csv(db, actor: Actor, job_id: int):
    """Every order of the job, streamed from the database in batches (job_outcomes)."""

    def build() -> bytes:
        return b"".join(job_outcomes.job_items_csv(db, job_id, actor=actor))

    return build


def outcome_banner(job) -> None:
    """How the job ended, unmistakably: a clean success, failures, a failure, a cancel."""
    if not job.finished:
        return
    summary = markdown_literal(job_outcomes.finished_summary(job))
    if job.status == "completed":
        st.success(summary, icon=":material/check_circle:")
    elif job.status == "completed_with_failures":
        st.warning(f"{summary} Some orders failed: see why below.", icon=":material/warning:")
    elif job.status == "failed":
        st.error(f"{summary} No order succeeded: see why below.", icon=":material/error:")
    else:
        st.info(summary, icon=":material/cancel:")


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
            st.text(f"Asked for by {job.actor} · {when(job.created_at)} ({ago(job.created_at)})")
        with badge_col:
            status_badge(job.status, cancel_requested=job.cancel_requested)

        st.progress(job.progress, text=f"{job.progress:.0%} · {counts_text(job)}")
        metrics = st.columns(5)
        metrics[0].metric("Orders", f"{job.total:,}")
        metrics[1].metric("Succeeded", f"{job.succeeded:,}")
        metrics[2].metric("Failed", f"{job.failed:,}")
        metrics[3].metric("Pending", f"{job.pending:,}")
        metrics[4].metric("Run time", duration(job.started_at, job.finished_at))

        outcome_banner(job)
        canceled = job_outcomes.cancel_outcome(job)
        if canceled and job.status != "canceled":
            st.info(markdown_literal(canceled), icon=":material/cancel:")
        elif canceled:
            st.caption(markdown_literal(canceled))
        if job.error:
            st.error(markdown_literal(job.error), icon=":material/error:")

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

        plan = jobs.retry_plan(db, job.id, actor=actor) if job.finished and job.failed else None
        with st.container(horizontal=True, key="job_actions"):
            if manage:
                actions(db, actor, job, plan)
            downloads(db, actor, job)
        if plan is not None and plan.not_retryable:
            st.caption(markdown_literal(plan.summary()))
        items(db, actor, job)
        if not job.finished:
            st.caption(":material/autorenew: Live: progress updates every second until the job finishes.")
        elif not first.finished:
            st.rerun()  # it just finished: one full run turns the auto-refresh off

    live_detail()


def actions(db, actor: Actor, job, plan) -> None:
    retryable = plan.retryable if plan is not None else 0
    st.button(
        f"Retry {retryable:,} failed" if retryable else "Retry failed",
        key="job_retry_failed",
        icon=":material/replay:",
        disabled=retryable == 0,
        on_click=retry_clicked,
        args=(job.id,),
        help=(
            "Queue a new job over the failed orders that can succeed on a retry (the gateway "
            "was unavailable, the order was busy or in another status then and is eligible now)."
        ),
    )
    # on_click: the click is answered even if the job finished (and the button is
    # disabled) in the run it starts; the answer then says nothing was canceled.
    st.button(
        "Cancel job",
        key="job_cancel",
        icon=":material/cancel:",
        disabled=job.finished or job.cancel_requested,
        on_click=cancel_clicked,
        args=(job.id,),
        help="Stop the job at its next chunk: orders already done stay done; the rest are not touched.",
    )


def _clicking_actor() -> Actor | None:
    account = session.signed_in_staff()  # a callback cannot rerun; the run after it checks again
    return account.as_actor() if account is not None else None


def retry_clicked(job_id: int) -> None:
    actor = _clicking_actor()
    if actor is None:
        return
    try:
        new = jobs.retry_failed(resources.get_db(), actor, job_id)
    except OrdersError as error:
        st.session_state[NOTICE] = ("error", str(error))
        return
    job_watch.watch_job(new.id)
    st.session_state[NOTICE] = (
        "success",
        f"Job #{new.id} was queued to retry {new.total:,} failed order"
        f"{'s' if new.total != 1 else ''} of job #{job_id}.",
    )
    st.query_params["job"] = str(new.id)


def cancel_clicked(job_id: int) -> None:
    actor = _clicking_actor()
    if actor is None:
        return
    try:
        done = jobs.cancel_job(resources.get_db(), actor, job_id)
    except ValidationError as error:  # it had already finished: nothing was canceled
        st.session_state[NOTICE] = ("warning", str(error))
    except OrdersError as error:
        st.session_state[NOTICE] = ("error", str(error))
    else:
        st.session_state[NOTICE] = ("info", job_outcomes.cancel_outcome(done) or "")


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
    if job.total:
        st.download_button(
            f"Download all {job.total:,} orders with outcomes (CSV)",
            data=items_csv(db, actor, job.id),
            file_name=f"job-{job.id}-orders.csv",
            mime="text/csv",
            key="job_items_download",
            icon=":material/download:",
            on_click="ignore",
        )
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


def items(db, actor: Actor, job) -> None:
    """Every order the job touched with its outcome, ITEMS_PAGE_SIZE at a time (server-side)."""
    st.subheader("Orders", anchor=False)
    if not job.total:
        st.caption("This job has no orders of its own (an export of a selection).")
        return
    counts = {
        "all": job.total,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "pending": job.pending,
    }
    outcome = st.segmented_control(
        "Outcome",
        list(OUTCOME_FILTERS),
        key="job_items_outcome",
        default="all",
        required=True,
        format_func=lambda o: f"{OUTCOME_FILTERS[o]} · {counts[o]:,}",
        label_visibility="collapsed",
    )
    remembered = f"job_items_page_number_{job.id}_{outcome}"
    page_number = int(st.session_state.get(remembered, 1))
    page = job_outcomes.job_items_page(
        db, job.id, actor=actor, page=page_number, page_size=ITEMS_PAGE_SIZE, outcome=outcome
    )
    if not page.rows:
        st.caption("No orders with this outcome" + (" so far." if not job.finished else "."))
        return
    frame = pd.DataFrame(
        {
            "Order": [f"[{r.order}]({links.order_url(r.order)})" for r in page.rows],
            "Outcome": [OUTCOME_CELLS.get(r.outcome, r.outcome_label) for r in page.rows],
            "Reason": [markdown_literal(r.reason) if r.reason else "" for r in page.rows],
            "Retry can help": [
                "" if r.retry_can_help is None else ("Yes" if r.retry_can_help else "No") for r in page.rows
            ],
        }
    )
    first = (page.page - 1) * page.page_size + 1
    st.caption(f"{first:,}–{first + len(page.rows) - 1:,} of {page.total:,}, in selection order")
    with st.container(key="job_items_table"):
        st.table(frame, hide_index=True)
    if page.pages > 1:
        pager = f"job_items_pager_{job.id}_{outcome}_{page.pages}"
        st.pagination(
            page.pages, default=page.page, key=pager, on_change=on_items_page, args=(pager, remembered)
        )


def on_items_page(pager: str, remembered: str) -> None:
    st.session_state[remembered] = st.session_state.get(pager) or 1


# -- page ---------------------------------------------------------------------------------


def show_notice(notice) -> None:
    """What the last click did, once: a success, or plainly what did not happen."""
    if not notice:
        return
    kind, text = notice if isinstance(notice, tuple) else ("success", notice)
    show = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}[kind]
    icons = {
        "success": ":material/check_circle:",
        "info": ":material/cancel:",
        "warning": ":material/block:",
        "error": ":material/error:",
    }
    show(markdown_literal(text), icon=icons[kind])


def main() -> None:
    actor = session.current_actor()  # stops the page unless a staff member is signed in
    st.title("Jobs")
    st.caption(
        "Bulk actions and exports, newest first. Jobs run in the background; leave and come back at any time."
    )
    show_notice(st.session_state.pop(NOTICE, None))

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
