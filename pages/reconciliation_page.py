"""Reconciliation: our payments and refunds of a period against the gateway's.

Pick the period and start a `reconcile` job (orders_core.reconciliation_jobs); the
report is stored, so the page re-reads it on every run: its progress while the job
runs (a fragment refreshing itself), then the counts per kind of mismatch, the table
and the CSV. ?run=ID opens one report; without it, the newest.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from orders_core import reconciliation_jobs
from orders_core.clock import utcnow
from orders_core.errors import NotFound, OrdersError
from orders_core.reconciliation import KIND_LABELS, MismatchKind, Period
from orders_core.staff import Actor, Permission
from pages.ui import display, links, plain_text, resources, session

REFRESH_SECONDS = 2
ROWS_SHOWN = 5000
TILE_WIDTH = 240  # px: the longest short label on one line
METRIC_LABELS = {  # short enough for a metric card; the full label is its tooltip
    MismatchKind.CHARGE_WITHOUT_ORDER: "Charges with no order",
    MismatchKind.PAYMENT_NOT_AT_GATEWAY: "Payments the gateway lacks",
    MismatchKind.REFUND_DIFFERS: "Refunds that differ",
    MismatchKind.REFUND_UNKNOWN: "Refunds unknown to us",
    MismatchKind.REFUNDED_AMOUNT_DIFFERS: "Refunded amounts off",
}
STATUS_STYLE = {  # label, badge colour, icon
    "queued": ("Queued", "gray", ":material/schedule:"),
    "running": ("Running", "blue", ":material/autorenew:"),
    "completed": ("Completed", "green", ":material/check_circle:"),
    "failed": ("Failed", "red", ":material/error:"),
}


def start_form(db, actor: Actor) -> None:
    today = utcnow().date()
    with st.form("reconcile_form", border=True):
        period = st.date_input(
            "Period (UTC days, both included)",
            value=(today - dt.timedelta(days=29), today),
            max_value=today,
            key="reconcile_period",
        )
        started = st.form_submit_button("Start reconciliation", icon=":material/play_arrow:", type="primary")
    if not started:
        return
    if not isinstance(period, (tuple, list)) or len(period) != 2:
        st.warning("Pick the first and the last day of the period.")
        return
    try:
        run = reconciliation_jobs.start_reconciliation(db, actor, Period(period[0], period[1]))
    except OrdersError as error:
        st.error(display.escape_markdown(str(error)))
        return
    st.query_params["run"] = str(run.id)
    st.rerun()


def selected_run(db, actor: Actor):
    raw = st.query_params.get("run")
    if raw:
        try:
            return reconciliation_jobs.get_run(db, actor, int(raw))
        except (ValueError, NotFound):
            st.warning(f"There is no reconciliation #{display.escape_markdown(raw)[:20]}.")
            del st.query_params["run"]
    runs = reconciliation_jobs.list_runs(db, actor, limit=1)
    return runs[0] if runs else None


def report(db, run_id: int, first_finished: bool) -> None:
    @st.fragment(run_every=None if first_finished else REFRESH_SECONDS)
    def live_report() -> None:
        actor = session.current_actor()  # each refresh: a session that ended reruns the whole app
        run = reconciliation_jobs.get_run(db, actor, run_id)
        if run.finished and not first_finished:
            st.rerun(scope="app")  # draw the report once, without the refresh
        label, color, icon = STATUS_STYLE.get(run.status, (run.status, "gray", None))
        head, badge = st.columns([6, 2], vertical_alignment="center")
        with head:
            st.subheader(f"Reconciliation #{run.id} · {run.gateway} · {run.period.describe()}", anchor=False)
            st.caption(
                f"Asked for by {plain_text.markdown_literal(run.actor)} at "
                f"{run.created_at:%Y-%m-%d %H:%M} UTC"
                + (f"; finished {run.finished_at:%Y-%m-%d %H:%M} UTC" if run.finished_at else "")
            )
        with badge:
            st.badge(label, color=color, icon=icon)
        if not run.finished:
            st.progress(run.progress, text=display.escape_markdown(run.stage))
            return
        if run.status == "failed":
            st.error(
                f"The reconciliation failed: {display.escape_markdown(run.error or 'no reason recorded')}",
                icon=":material/error:",
            )
            return
        show_counts(run)
        if run.clean:
            st.success(
                "No mismatches: our payments and refunds agree with the gateway's for this period.",
                icon=":material/verified:",
            )
            return
        rows = reconciliation_jobs.run_mismatches(db, actor, run.id, limit=ROWS_SHOWN)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Kind": m.kind.label,
                        "Order": m.order_number or "—",
                        "Gateway id": m.gateway_id or "—",
                        "Ours": m.ours,
                        "Theirs": m.theirs,
                        "Detail": m.detail,
                    }
                    for m in rows
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={"Detail": st.column_config.TextColumn(width="large")},
            key="reconcile_rows",
        )
        if run.mismatches > ROWS_SHOWN:
            st.caption(f"The first {ROWS_SHOWN:,} of {run.mismatches:,} rows; the CSV has them all.")
        st.download_button(
            "Download CSV",
            data=lambda: reconciliation_jobs.run_csv(db, session.current_actor(), run.id),
            file_name=f"reconciliation-{run.id}-{run.period.first}-{run.period.last}.csv",
            mime="text/csv",
            icon=":material/download:",
            key="reconcile_csv",
        )

    live_report()


def show_counts(run) -> None:
    st.caption(
        f"Checked {run.payments_checked:,} payments and {run.refunds_checked:,} refunds of ours, "
        f"{run.gateway_charges:,} payments and {run.gateway_refunds:,} refunds at the gateway, "
        f"{run.orders_checked:,} orders."
    )
    # Fixed-width tiles in a row that wraps: a label is never cut off, from 1280 px up.
    tiles = st.container(horizontal=True, gap="medium", key="reconciliation_counts")
    for kind in MismatchKind:
        tiles.metric(
            METRIC_LABELS[kind],
            f"{run.counts.get(kind.value, 0):,}",
            help=KIND_LABELS[kind],
            border=True,
            width=TILE_WIDTH,
        )


def history(db, actor: Actor) -> None:
    runs = reconciliation_jobs.list_runs(db, actor, limit=20)
    if len(runs) < 2:
        return
    with st.expander("Earlier reports"):
        for run in runs:
            state = "clean" if run.clean else f"{run.mismatches:,} mismatches" if run.finished else run.status
            st.page_link(
                links.RECONCILIATION_PAGE,
                label=f"#{run.id} · {run.gateway} · {run.period.describe()} · {state}",
                query_params={"run": str(run.id)},
            )


def main() -> None:
    actor = session.current_actor()  # stops the page unless a staff member is signed in
    st.title("Reconciliation")
    st.caption(
        "Our payments and refunds against the payment gateway's for a period: charges with no "
        "order, payments the gateway does not hold, refunds that differ or that we do not know, "
        "and orders whose refunded amount is not the sum of their refunds."
    )
    if not session.can(Permission.RECONCILE):
        st.warning("Your role does not allow reconciling payments.", icon=":material/lock:")
        return
    db = resources.get_db()
    start_form(db, actor)
    run = selected_run(db, actor)
    if run is None:
        st.info("No reconciliation yet: pick a period and start one.", icon=":material/info:")
        return
    report(db, run.id, run.finished)
    history(db, actor)


if __name__ == "__main__":
    main()
