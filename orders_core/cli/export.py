"""The `export` command of `python -m orders_core`: the orders CSV, written here and now.

    python -m orders_core export --status paid --from 2026-01-01 --output paid.csv

Same conventions as every command (orders_core/cli/__init__.py): --json prints JSON on
stdout, plain text otherwise; exit code 0 ok, 1 a business refusal such as a bad
filter value (the message on stderr), 2 bad usage. The file format is described in
orders_core/export.py. For an export as a background job, use `bulk export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..staff import SYSTEM
from .common import Command, add_json, add_order_filters, cell, emit, open_db, order_filters


def args_export(p: argparse.ArgumentParser) -> None:
    add_order_filters(p)
    p.add_argument(
        "--output",
        "-o",
        required=True,
        type=Path,
        metavar="FILE",
        help="the CSV file to write (its folder is created; an existing file "
        "is replaced only once the new one is complete)",
    )
    add_json(p)


def cmd_export(args: argparse.Namespace) -> None:
    from ..export import export_orders  # DuckDB and pyarrow load for this command only

    filters = order_filters(args)
    result = export_orders(open_db(), args.output, actor=SYSTEM, filters=filters)
    data = {
        "path": str(result.path),
        "rows": result.rows,
        "bytes": result.bytes,
        "seconds": result.seconds,
        "selection": filters.describe(),
    }
    emit(
        args,
        data,
        lambda d: (
            f"Exported {d['rows']:,} orders ({d['selection']}) to {cell(d['path'])}: "
            f"{d['bytes']:,} bytes in {d['seconds']:.1f} s."
        ),
    )


COMMANDS = (
    Command(
        "export",
        "write the orders matching the filters to a CSV file, now (not as a job)",
        cmd_export,
        args_export,
    ),
)
