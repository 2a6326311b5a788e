"""The `reconcile` command of `python -m orders_core`: our payments and refunds of a
period against the payment gateway's, here and now; the report is stored too (the
Reconciliation page lists it).

    python -m orders_core reconcile --from 2026-11-01 --to 2026-11-30 --csv nov.csv

Exit codes, for scripts (cron, CI): 0 the books agree; 4 mismatches were found (the
report is printed, and written with --csv); 1 the reconciliation could not be done
(the gateway unreachable, a bad period: the message on stderr); 2 bad usage. So
`reconcile || alert` alerts on both, and a script can tell "found differences" (4)
from "could not look" (1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..payments import Gateways
from ..reconciliation import KIND_LABELS, MismatchKind, Period, ReconciliationReport, report_csv
from ..reconciliation_jobs import gateway_name, reconcile_now
from .common import Command, acting_actor, add_actor, add_json, cell, emit, open_db, table

EXIT_MISMATCHES = 4


def args_reconcile(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="period_from",
        metavar="DATE",
        help="first day (YYYY-MM-DD, UTC); default: 29 days before --to",
    )
    p.add_argument(
        "--to", dest="period_to", metavar="DATE", help="last day, included (YYYY-MM-DD, UTC); default: today"
    )
    p.add_argument("--gateway", help="the gateway to compare with (default: ORDERS_PAYMENT_GATEWAY)")
    p.add_argument("--csv", type=Path, metavar="PATH", help="also write the report's rows to this CSV file")
    add_actor(p)
    add_json(p)


def cmd_reconcile(args: argparse.Namespace) -> None:
    period = Period.parse(args.period_from, args.period_to)
    db = open_db()
    actor = acting_actor(db, args)
    ledger = Gateways(db).named(gateway_name(args.gateway))
    run, report = reconcile_now(db, actor, period, ledger)
    data = report.as_dict() | {"run": run.id}
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        args.csv.write_bytes(report_csv(report.mismatches))
        data["csv"] = str(args.csv)
    emit(args, data, lambda d: _render(d, report))
    if not report.clean:
        raise SystemExit(EXIT_MISMATCHES)


def _render(data: dict, report: ReconciliationReport) -> str:
    checked = data["checked"]
    head = (
        f"Reconciliation #{data['run']} of {data['gateway']} payments, {data['from']} to {data['to']}: "
        f"{checked['payments']:,} payments and {checked['refunds']:,} refunds of ours, "
        f"{checked['gateway_charges']:,} payments and {checked['gateway_refunds']:,} refunds at the gateway, "
        f"{checked['orders']:,} orders."
    )
    if data["clean"]:
        lines = [head, "No mismatches: our books and the gateway's agree."]
    else:
        counts = table(
            ["MISMATCH", "COUNT"],
            [[KIND_LABELS[MismatchKind(kind)], n] for kind, n in data["counts"].items()],
        )
        rows = table(
            ["KIND", "ORDER", "GATEWAY ID", "OURS", "THEIRS", "DETAIL"],
            [
                [m.kind.value, m.order_number or "—", m.gateway_id or "—", m.ours, m.theirs, m.detail]
                for m in report.mismatches
            ],
        )
        lines = [head, "", counts, "", rows]
    if data.get("csv"):
        lines.append(f"CSV written to {cell(data['csv'])}.")
    return "\n".join(lines)


COMMANDS = (
    Command(
        "reconcile",
        "compare our payments and refunds of a period with the gateway's (exit 4 when they differ)",
        cmd_reconcile,
        args_reconcile,
    ),
)
