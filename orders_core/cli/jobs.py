"""The bulk-job commands of `python -m orders_core`: bulk, jobs, job, worker.

Same conventions as every command (orders_core/cli/__init__.py): --json prints JSON
on stdout, plain text otherwise; exit code 0 ok, 1 a business refusal (the message on
stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from .. import job_engine, job_outcomes, jobs
from ..staff import SYSTEM
from ..status import Status
from .common import (
    Command,
    acting_actor,
    add_actor,
    add_json,
    add_money_filters,
    cell,
    emit,
    open_db,
    order_filters,
    table,
    whole_number_option,
)

FILTER_OPTIONS = (
    "created_from",
    "created_to",
    "search",
    "sku",
    "min_total",
    "max_total",
    "currency",
    "unfulfilled_days",
)
MAX_LISTED_FAILURES = 1000


# -- bulk -----------------------------------------------------------------------------------
def args_bulk(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=[a.value for a in jobs.JobAction if a.selects_orders],
        help="what to do to every selected order",
    )
    selection = p.add_mutually_exclusive_group(required=True)
    selection.add_argument(
        "--orders", metavar="N1,N2,...", help="comma-separated order numbers (duplicates count once)"
    )
    selection.add_argument(
        "--status",
        help="the orders of this status, narrowed by the filters "
        "below: one of " + ", ".join(s.value for s in Status) + " or all",
    )
    p.add_argument(
        "--from",
        dest="created_from",
        metavar="DATE",
        help="with --status: created on or after this day (YYYY-MM-DD, UTC)",
    )
    p.add_argument(
        "--to",
        dest="created_to",
        metavar="DATE",
        help="with --status: created on or before this day (YYYY-MM-DD, UTC)",
    )
    p.add_argument(
        "--search", metavar="TEXT", help="with --status: order number, or part of an email or name"
    )
    p.add_argument("--sku", metavar="CODE", help="with --status: orders with an item of this SKU")
    add_money_filters(p, prefix="with --status: ")
    p.add_argument("--reason", default="", help="why; kept in each order's timeline")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only show the preflight: how many orders are eligible, why the others "
        "are not, what would be refunded; queue nothing",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="return when the job has finished, working on it here unless another worker does",
    )
    add_actor(p)
    add_json(p)


def _selection(args: argparse.Namespace) -> dict:
    given = [name for name in FILTER_OPTIONS if getattr(args, name) is not None]
    if args.orders is not None:
        if given:
            args.parser.error(
                "the filters (--from, --to, --search, --sku, --currency, --min-total, "
                "--max-total, --unfulfilled-days) narrow a --status selection, not --orders"
            )
        return {"order_numbers": [n.strip() for n in args.orders.split(",") if n.strip()]}
    return {"filters": order_filters(args)}


def cmd_bulk(args: argparse.Namespace) -> None:
    selection = _selection(args)
    db = open_db()
    actor = acting_actor(db, args)
    if args.dry_run:
        check = jobs.preflight(db, actor, args.action, **selection)
        emit(args, check.as_dict(), lambda _: _render_preflight(check))
        return
    job = jobs.enqueue(db, actor, args.action, reason=args.reason, **selection)
    failures: list[dict] = []
    if args.wait:
        job = job_engine.run_job_here(db, job.id)
        if job.failed and not args.json:
            failures = jobs.job_failures(db, job.id, actor=actor, limit=10)
    emit(args, job.as_dict(), lambda _: _render_job(job, failures, waited=args.wait))


def _render_preflight(check: jobs.Preflight) -> str:
    lines = [check.summary()]
    if check.ineligible:
        lines += [
            "",
            table(["NOT ELIGIBLE", "ORDERS"], [[reason, f"{n:,}"] for reason, n in check.ineligible.items()]),
        ]
    if check.unknown:
        lines.append("Unknown order numbers: " + ", ".join(cell(n) for n in check.unknown))
    return "\n".join(lines)


def _render_job(
    job: jobs.JobView, failures: Sequence[dict] = (), *, waited: bool = False, notes: Sequence[str] = ()
) -> str:
    lines = [
        f"Job #{job.id}  {job.action.capitalize()}  {job.status_label}"
        + ("  (cancel requested)" if job.cancel_requested and not job.finished else ""),
        f"Selection: {cell(job.selection)}",
        f"Orders:    {job.total:,} total, {job.succeeded:,} succeeded, {job.failed:,} "
        f"failed, {job.pending:,} pending",
        f"Asked by:  {cell(job.actor)} at {_time(job.created_at)}",
    ]
    if job.reason:
        lines.append(f"Reason:    {cell(job.reason)}")
    if job.started_at:
        lines.append(f"Started:   {_time(job.started_at)}")
    if job.finished_at:
        lines.append(f"Finished:  {_time(job.finished_at)}")
    if job.retry_of:
        lines.append(f"Retry of:  job #{job.retry_of}")
    if job.export_path:
        lines.append(
            f"Export:    {cell(job.export_path)} ({job.export_rows:,} rows, {job.export_bytes or 0:,} bytes)"
        )
    if job.error:
        lines.append(f"Error:     {cell(job.error)}")
    lines += [cell(note) for note in notes]  # what a cancel did; what a retry would do
    if failures:
        lines += ["", table(["FAILED ORDER", "REASON"], [[f["order"], f["reason"]] for f in failures])]
        if job.failed > len(failures):
            lines.append(f"… and {job.failed - len(failures):,} more (python -m orders_core job {job.id})")
    if not job.finished and not waited:
        lines.append(f"Queued: a worker runs it; `python -m orders_core job {job.id}` shows its progress.")
    return "\n".join(lines)


def _time(value) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else ""


# -- jobs, job --------------------------------------------------------------------------------
def args_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--limit",
        type=whole_number_option("Limit", 1, 1000),
        default=20,
        metavar="N",
        help="at most N jobs, newest first (default 20, max 1000)",
    )
    add_json(p)


def cmd_jobs(args: argparse.Namespace) -> None:
    listed = jobs.list_jobs(open_db(), actor=SYSTEM, limit=args.limit)
    emit(args, [j.as_dict() for j in listed], lambda _: _render_jobs(listed))


def _render_jobs(listed: list[jobs.JobView]) -> str:
    if not listed:
        return "No jobs yet."
    return table(
        ["ID", "ACTION", "STATUS", "TOTAL", "SUCCEEDED", "FAILED", "PENDING", "CREATED", "BY", "SELECTION"],
        [
            [
                j.id,
                j.action,
                j.status,
                j.total,
                j.succeeded,
                j.failed,
                j.pending,
                _time(j.created_at),
                j.actor,
                j.selection[:60],
            ]
            for j in listed
        ],
    )


def args_job(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id", metavar="ID", help="the job's number, e.g. 12")
    change = p.add_mutually_exclusive_group()
    change.add_argument(
        "--cancel",
        action="store_true",
        help="cancel it: a queued job at once, a running one at its next chunk",
    )
    change.add_argument(
        "--retry-failed", action="store_true", help="queue a new job of its failed orders only"
    )
    p.add_argument(
        "--max-failures",
        type=whole_number_option("Max failures", 0, 10_000_000),
        default=MAX_LISTED_FAILURES,
        metavar="N",
        help=f"list at most N failed orders (default {MAX_LISTED_FAILURES})",
    )
    add_actor(p)
    add_json(p)


def cmd_job(args: argparse.Namespace) -> None:
    db = open_db()
    actor = acting_actor(db, args)
    if args.cancel:
        job = jobs.cancel_job(db, actor, args.job_id)
    elif args.retry_failed:
        job = jobs.retry_failed(db, actor, args.job_id)
    else:
        job = jobs.get_job(db, args.job_id, actor=actor)
    failures = jobs.job_failures(db, job.id, actor=actor, limit=args.max_failures)
    data = job.as_dict() | {"failures": failures}
    notes = [n for n in [job_outcomes.cancel_outcome(job)] if n]
    if job.finished and job.failed:
        plan = jobs.retry_plan(db, job.id, actor=actor)
        data["retry"] = plan.as_dict()
        notes.append(f"Retry:     {plan.summary()}")
    if job.action == jobs.JobAction.EXPORT.value:
        data["path"] = job.export_path
    emit(args, data, lambda _: _render_job(job, failures, waited=True, notes=notes))


# -- worker -----------------------------------------------------------------------------------
def args_worker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="process what is queued and claimable now, then exit")
    p.add_argument(
        "--poll",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often an idle worker looks for new jobs (default 1)",
    )
    p.add_argument("--name", metavar="NAME", help="the worker's name in job records (default: host:pid)")
    add_json(p)


def cmd_worker(args: argparse.Namespace) -> None:
    if not 0.05 <= args.poll <= 3600:
        args.parser.error("--poll must be between 0.05 and 3600 seconds")
    db = open_db()
    stop = threading.Event()
    runner = job_engine.Worker(db, name=args.name)

    def on_signal(signum, _frame):  # finish the current chunk, release the lease, exit
        print(
            f"worker {runner.id}: {signal.Signals(signum).name}; stopping after the current chunk",
            file=sys.stderr,
            flush=True,
        )
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    logger, handler = _log_to_stderr()
    try:
        print(
            f"worker {runner.id}: started" + (" (--once)" if args.once else ""), file=sys.stderr, flush=True
        )
        if args.once:
            try:
                runner.run_once(stop)
            finally:
                runner.release()
                runner.close()
        else:
            runner.run_forever(stop, poll_seconds=args.poll)
    finally:
        logger.removeHandler(handler)
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)
    result = {"worker": runner.id, "processed": runner.processed}
    emit(args, result, lambda r: f"worker {r['worker']}: processed {r['processed']:,} items")


def _log_to_stderr() -> tuple[logging.Logger, logging.Handler]:
    """The worker's progress (jobs finished, retries, failures) as lines on stderr."""
    logger = logging.getLogger("orders_core.worker")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return logger, handler


COMMANDS = (
    Command(
        "bulk",
        "queue a mass Export, Fulfill, Cancel or Return of orders as a background job",
        cmd_bulk,
        args_bulk,
    ),
    Command("jobs", "list recent bulk jobs, newest first", cmd_jobs, args_jobs),
    Command(
        "job",
        "one bulk job: progress, failures with reasons, export file; cancel or retry it",
        cmd_job,
        args_job,
    ),
    Command(
        "worker",
        "run a worker that processes queued bulk jobs (SIGTERM stops it cleanly)",
        cmd_worker,
        args_worker,
    ),
)
