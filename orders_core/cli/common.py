"""What every command of `python -m orders_core` shares: the Command record, the
common options, opening the database, and printing (JSON, or plain-text tables with
no terminal control characters)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from .. import staff
from ..db import Database, open_database
from ..errors import OrdersError
from ..money import format_money
from ..queries import OrderFilters
from ..status import Status
from ..validation import whole_number


@dataclasses.dataclass(frozen=True)
class Command:
    """One command (or a group of subcommands) of the CLI, as listed in COMMANDS."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], None] | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    subcommands: tuple[Command, ...] = ()


# -- options -------------------------------------------------------------------------------
def whole_number_option(field: str, minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type checked by orders_core's whole_number: malformed → usage error."""

    def parse(text: str) -> int:
        try:
            return whole_number(text, field, minimum=minimum, maximum=maximum)
        except OrdersError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = field.lower()
    return parse


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor",
        metavar="EMAIL",
        help="act as this staff member, with their role (default: the system operator, allowed everything)",
    )


def add_order_filters(p: argparse.ArgumentParser) -> None:
    """The order-list filters, as every command that selects orders takes them."""
    p.add_argument("--status", help="one of " + ", ".join(s.value for s in Status) + " (or all)")
    p.add_argument(
        "--from", dest="created_from", metavar="DATE", help="created on or after this day (YYYY-MM-DD, UTC)"
    )
    p.add_argument(
        "--to", dest="created_to", metavar="DATE", help="created on or before this day (YYYY-MM-DD, UTC)"
    )
    p.add_argument("--search", metavar="TEXT", help="order number, or part of an email or name")
    p.add_argument("--sku", metavar="CODE", help="orders with an item of this SKU")
    add_money_filters(p)


def add_money_filters(p: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """--currency, --min-total/--max-total (in that currency's own units) and the ageing filter."""
    p.add_argument("--currency", metavar="CODE", help=prefix + "orders in this currency (usd, jpy, …)")
    p.add_argument(
        "--min-total",
        metavar="AMOUNT",
        help=prefix + "total at least AMOUNT in --currency's units (19.99 USD, 5000 JPY); needs --currency",
    )
    p.add_argument("--max-total", metavar="AMOUNT", help=prefix + "total at most AMOUNT, as --min-total")
    p.add_argument(
        "--unfulfilled-days",
        metavar="N",
        help=prefix + "still Paid and paid more than N days ago (the ageing view)",
    )


def order_filters(args: argparse.Namespace) -> OrderFilters:
    """The filters given to a command that took `add_order_filters` (or the same names)."""
    return OrderFilters.parse(
        status=args.status,
        created_from=args.created_from,
        created_to=args.created_to,
        search=args.search,
        sku=args.sku,
        min_total=args.min_total,
        max_total=args.max_total,
        currency=getattr(args, "currency", None),
        unfulfilled_days=getattr(args, "unfulfilled_days", None),
    )


# -- the database and who acts ---------------------------------------------------------------
def open_db() -> Database:
    return open_database()  # applies any pending migration


def acting_actor(db: Database, args: argparse.Namespace) -> staff.Actor:
    """The staff member named by --actor, or the system operator."""
    return staff.actor_for_email(db, args.actor) if args.actor else staff.SYSTEM


# -- output ----------------------------------------------------------------------------------
def print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit(args: argparse.Namespace, data, render: Callable[[Any], str]) -> None:
    """JSON with --json, otherwise the plain text `render` makes of `data`."""
    if getattr(args, "json", False):
        print_json(data)
    else:
        print(render(data))


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def cell(value) -> str:
    """One line of text with no terminal control characters (names come from users)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).replace("\r\n", "\n").replace("\n", "; ")
    return _UNPRINTABLE.sub("?", text)


def _width(text: str) -> int:
    return sum(
        2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text
    )


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[cell(h) for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def money_text(amount, currency) -> str:
    return "" if amount is None else format_money(int(amount), currency)


__all__ = [
    "Command",
    "whole_number_option",
    "add_json",
    "add_actor",
    "add_money_filters",
    "add_order_filters",
    "order_filters",
    "open_db",
    "acting_actor",
    "print_json",
    "emit",
    "cell",
    "table",
    "indent",
    "money_text",
]
