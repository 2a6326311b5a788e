"""The `export` command of `python -m orders_core`: the orders CSV, written here and now.

    python -m orders_core export --status paid --from 2026-01-01 --output paid.csv

Same conventions as orders_core/cli.py (which calls `register`): --json prints JSON on
stdout, plain text otherwise; exit code 0 ok, 1 a business refusal such as a bad
filter value (the message on stderr), 2 bad usage. The file format is described in
orders_core/export.py. For an export as a background job, use `bulk export`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli import _add_json, _cell, _db, _emit, add_order_filters
from .export import export_orders
from .queries import OrderFilters
from .staff import SYSTEM


def args_export(p: argparse.ArgumentParser) -> None:
    add_order_filters(p)
    p.add_argument("--output", "-o", required=True, type=Path, metavar="FILE",
                   help="the CSV file to write (its folder is created; an existing file "
                        "is replaced only once the new one is complete)")
    _add_json(p)


def cmd_export(args: argparse.Namespace) -> None:
    filters = OrderFilters.parse(
        status=args.status, created_from=args.created_from, created_to=args.created_to,
        search=args.search, sku=args.sku, min_total=args.min_total, max_total=args.max_total)
    result = export_orders(_db(), args.output, actor=SYSTEM, filters=filters)
    data = {"path": str(result.path), "rows": result.rows, "bytes": result.bytes,
            "seconds": result.seconds, "selection": filters.describe()}
    _emit(args, data, lambda d: (
        f"Exported {d['rows']:,} orders ({d['selection']}) to {_cell(d['path'])}: "
        f"{d['bytes']:,} bytes in {d['seconds']:.1f} s."))


HELP = "write the orders matching the filters to a CSV file, now (not as a job)"


def register(subparsers) -> None:
    """Add `export` to the CLI's subparsers (called by cli.py)."""
    p = subparsers.add_parser("export", help=HELP, description=HELP)
    args_export(p)
    p.set_defaults(run=cmd_export, parser=p)


__all__ = ["register"]
