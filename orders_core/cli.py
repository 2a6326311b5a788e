"""The command line: `python -m orders_core COMMAND ...`.

Each command is one small function, listed in COMMANDS at the bottom. Commands
that print data take --json (JSON on stdout) and otherwise print a plain-text
table or summary. Input is checked by orders_core's own validators, so the CLI
refuses bad input exactly as the pages do.

Exit codes
  0  success
  1  a business rule refused (any OrdersError): the message on stderr, "error: ..."
  2  bad usage: unknown command, malformed option, conflicting options, bad settings
  3  an unexpected failure: "error: unexpected failure: Type: message" on stderr;
     ORDERS_DEBUG=1 adds the traceback
  141  stdout was closed early (`... | head`)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import traceback
import unicodedata
from typing import Callable, Sequence

from . import catalog, checkout, customers, lifecycle, queries, staff
from .db import Database, open_database
from .config import ConfigError
from .errors import OrdersError
from .money import format_money
from .status import Status
from .validation import whole_number

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNEXPECTED = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # as if killed by SIGPIPE, like other Unix tools in a pipeline
MAX_SEED_ORDERS = 5_000_000


# -- shared options and helpers -----------------------------------------------------------
def _whole(field: str, minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type checked by orders_core's whole_number: malformed → usage error."""
    def parse(text: str) -> int:
        try:
            return whole_number(text, field, minimum=minimum, maximum=maximum)
        except OrdersError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parse.__name__ = field.lower()
    return parse


def _cart_item(text: str) -> tuple[str, str]:
    """SKU_CODE:QTY → (code, quantity text); checkout's own validators check both."""
    code, colon, quantity = text.rpartition(":")
    if not colon or not code.strip() or not quantity.strip():
        raise argparse.ArgumentTypeError(
            f"{text[:60]!r} is not SKU_CODE:QUANTITY (e.g. TOTE-USD:2)")
    return code.strip(), quantity.strip()


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _add_actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", metavar="EMAIL",
                        help="act as this staff member, with their role "
                             "(default: the system operator, allowed everything)")


def _db() -> Database:
    return open_database()


def _actor(db: Database, args: argparse.Namespace) -> staff.Actor:
    return staff.actor_for_email(db, args.actor) if args.actor else staff.SYSTEM


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _emit(args: argparse.Namespace, data, render: Callable[[object], str]) -> None:
    if getattr(args, "json", False):
        _print_json(data)
    else:
        print(render(data))


# -- plain-text rendering ------------------------------------------------------------------
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _cell(value) -> str:
    """One line of text with no terminal control characters (names come from users)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).replace("\r\n", "\n").replace("\n", "; ")
    return _UNPRINTABLE.sub("?", text)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else
               0 if unicodedata.combining(c) else 1 for c in text)


def _table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[_cell(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip()
             for row in cells]
    return "\n".join(lines)


def _money(amount, currency) -> str:
    return "" if amount is None else format_money(int(amount), currency)


def _render_order(order: dict) -> str:
    cur = order["currency"]
    customer = order["customer"]
    lines = [f"{_cell(order['number'])}  {order['status'].capitalize()}",
             f"Customer:  {_cell(customer['name'])} <{_cell(customer['email'])}>",
             f"Total:     {_money(order['total_amount'], cur)}"
             + (f" (refunded {_money(order['refunded_amount'], cur)})"
                if order["refunded_amount"] else "")]
    for label in ("created", "paid", "fulfilled", "canceled", "returned"):
        if order.get(f"{label}_at"):
            lines.append(f"{label.capitalize() + ':':<11}{order[f'{label}_at']}")
    address = order.get("shipping_address")
    if address:
        parts = [address["name"], address["line1"], address["line2"], address["city"],
                 " ".join(p for p in (address["region"], address["postal_code"]) if p),
                 address["country"]]
        lines.append(f"Ship to:   {_cell(', '.join(p for p in parts if p))}")
    lines += ["", "Items", _indent(_table(
        ["SKU", "NAME", "QTY", "UNIT", "AMOUNT"],
        [[i["sku"], i["name"], i["quantity"], _money(i["unit_amount"], cur),
          _money(i["amount"], cur)] for i in order["items"]]))]
    if order["payment_attempts"]:
        lines += ["", "Payments", _indent(_table(
            ["AT", "GATEWAY", "ID", "AMOUNT", "STATUS", "FAILURE"],
            [[p["created_at"], p["gateway"], p["gateway_payment_id"],
              _money(p["amount"], p["currency"]), p["status"],
              p["failure_message"] or ""] for p in order["payment_attempts"]]))]
    if order["refunds"]:
        lines += ["", "Refunds", _indent(_table(
            ["AT", "ID", "AMOUNT", "STATUS", "ACTION", "BY"],
            [[r["created_at"], r["gateway_refund_id"], _money(r["amount"], r["currency"]),
              r["status"], r["action"], r["actor"]] for r in order["refunds"]]))]
    lines += ["", "Timeline", _indent(_table(
        ["AT", "BY", "ACTION", "STATUS", "NOTE"],
        [[e["at"], e["actor"], e["action"],
          f"{e['from_status'] or ''} → {e['to_status']}".lstrip() if e["to_status"] else "",
          e["note"]] for e in order["events"]]))]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _staff_dict(account: staff.StaffAccount) -> dict:
    return {"id": account.id, "email": account.email, "name": account.name,
            "role": account.role.value, "active": account.active}


def _render_staff(account: dict) -> str:
    state = "active" if account["active"] else "deactivated"
    return f"{_cell(account['email'])} ({_cell(account['name'])}): {account['role']}, {state}"


# -- commands --------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> None:
    _db()  # open_database applies any pending migration
    print("schema up to date")


def args_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--orders", type=_whole("Orders", 0, MAX_SEED_ORDERS), default=2000,
                   metavar="N", help=f"orders to append (0..{MAX_SEED_ORDERS:,}; default 2000)")
    p.add_argument("--random-seed", type=_whole("Random seed", 0, 2**63 - 1), default=1,
                   metavar="S", help="seed of the generator (default 1)")
    _add_json(p)


def cmd_seed(args: argparse.Namespace) -> None:
    from . import demo  # written separately; only this command needs it

    report = demo.seed(_db(), orders=args.orders, random_seed=args.random_seed)
    _emit(args, dataclasses.asdict(report), lambda data: (
        report.summary() if callable(getattr(report, "summary", None))
        else "\n".join(f"{key}: {value}" for key, value in data.items())))


def cmd_catalog(args: argparse.Namespace) -> None:
    listings = [sku.as_dict() for sku in catalog.list_skus(_db())]
    _emit(args, listings, lambda rows: _table(
        ["CODE", "NAME", "PRODUCT", "SHIPS", "PRICE", "ACTIVE"],
        [[r["code"], r["name"], r["product"], r["shippable"],
          _money(r["unit_amount"], r["currency"]), r["active"]] for r in rows]))


def add_order_filters(p: argparse.ArgumentParser) -> None:
    """The order-list filters, as every command that selects orders takes them."""
    p.add_argument("--status", help="one of " + ", ".join(s.value for s in Status) + " (or all)")
    p.add_argument("--from", dest="created_from", metavar="DATE",
                   help="created on or after this day (YYYY-MM-DD, UTC)")
    p.add_argument("--to", dest="created_to", metavar="DATE",
                   help="created on or before this day (YYYY-MM-DD, UTC)")
    p.add_argument("--search", metavar="TEXT", help="order number, or part of an email or name")
    p.add_argument("--sku", metavar="CODE", help="orders with an item of this SKU")
    p.add_argument("--min-total", metavar="N", help="total at least N, in minor units (cents)")
    p.add_argument("--max-total", metavar="N", help="total at most N, in minor units (cents)")


def args_orders(p: argparse.ArgumentParser) -> None:
    add_order_filters(p)
    p.add_argument("--limit", type=_whole("Limit", 1, queries.MAX_PAGE_SIZE), default=50,
                   metavar="N", help=f"at most N orders, newest first (default 50, "
                                     f"max {queries.MAX_PAGE_SIZE})")
    _add_json(p)


def cmd_orders(args: argparse.Namespace) -> None:
    filters = queries.OrderFilters.parse(
        status=args.status, created_from=args.created_from, created_to=args.created_to,
        search=args.search, sku=args.sku, min_total=args.min_total, max_total=args.max_total)
    page = queries.list_orders(_db(), filters, page_size=args.limit, with_total=not args.json)
    _emit(args, page.rows, lambda rows: _render_orders(rows, page.total, filters))


def _render_orders(rows: list[dict], total: int, filters: queries.OrderFilters) -> str:
    if not rows:
        return f"No orders ({filters.describe()})."
    return "\n".join([
        _table(["NUMBER", "STATUS", "CREATED", "CUSTOMER", "ITEMS", "TOTAL", "REFUNDED"],
               [[r["number"], r["status"], r["created_at"], r["customer_email"], r["item_count"],
                 _money(r["total_amount"], r["currency"]),
                 _money(r["refunded_amount"], r["currency"]) if r["refunded_amount"] else ""]
                for r in rows]),
        f"{len(rows)} of {total} orders ({filters.describe()}), newest first."])


def args_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", metavar="NUMBER", help="order number, e.g. ORD-000123")
    _add_json(p)


def cmd_show(args: argparse.Namespace) -> None:
    _emit(args, queries.order_detail(_db(), args.number), _render_order)


ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")


def args_checkout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--email", required=True, help="the customer's account")
    p.add_argument("--password", required=True, help="the customer's password")
    p.add_argument("--item", dest="items", action="append", required=True, type=_cart_item,
                   metavar="SKU_CODE:QTY", help="a line of the order; repeat for more")
    p.add_argument("--token", required=True, help="card token, e.g. tok_visa")
    p.add_argument("--address-id", metavar="ID", help="one of the customer's saved addresses")
    for field in ADDRESS_FIELDS:
        p.add_argument(f"--address-{field.replace('_', '-')}", dest=f"address_{field}",
                       metavar="TEXT", help=f"shipping address: {field.replace('_', ' ')}")
    p.add_argument("--checkout-key", metavar="KEY",
                   help="idempotency key: repeating it returns the first order, charged once; "
                        "after a decline it pays that order with the new --token")
    _add_json(p)


def cmd_checkout(args: argparse.Namespace) -> None:
    given = {f: getattr(args, f"address_{f}") for f in ADDRESS_FIELDS
             if getattr(args, f"address_{f}") is not None}
    if args.address_id is not None and given:
        args.parser.error("give either --address-id or the --address-* fields, not both")
    address = (customers.AddressInput(**{f: given.get(f, "") for f in ADDRESS_FIELDS})
               if given else None)
    db = _db()
    customer = customers.sign_in(db, email=args.email, password=args.password)
    order = checkout.submit_checkout(db, customer, items=args.items, token=args.token,
                                     address_id=args.address_id, address=address,
                                     checkout_key=args.checkout_key)
    _emit(args, order, _render_order)


def args_move(*, reason: bool) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("number", metavar="NUMBER", help="order number, e.g. ORD-000123")
        _add_actor(p)
        if reason:
            p.add_argument("--reason", default="", help="why; kept in the order's timeline")
        _add_json(p)
    return add


def args_pay(p: argparse.ArgumentParser) -> None:
    args_move(reason=False)(p)
    p.add_argument("--token", required=True, help="card token, e.g. tok_visa")


def cmd_pay(args: argparse.Namespace) -> None:
    db = _db()
    _emit(args, checkout.pay_order(db, _actor(db, args), args.number, token=args.token),
          _render_order)


def _move(service) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        db = _db()
        _emit(args, service(db, _actor(db, args), args.number, reason=args.reason), _render_order)
    run.__name__ = f"cmd_{service.__name__}"
    return run


cmd_fulfill = _move(lifecycle.fulfill_order)
cmd_cancel = _move(lifecycle.cancel_order)
cmd_return = _move(lifecycle.return_order)


# -- staff ----------------------------------------------------------------------------------
def args_staff_list(p: argparse.ArgumentParser) -> None:
    _add_actor(p)
    _add_json(p)


def cmd_staff_list(args: argparse.Namespace) -> None:
    db = _db()
    accounts = [_staff_dict(a) for a in staff.list_staff(db, _actor(db, args))]
    _emit(args, accounts, lambda rows: _table(
        ["EMAIL", "NAME", "ROLE", "ACTIVE"],
        [[a["email"], a["name"], a["role"], a["active"]] for a in rows]))


ROLES = ", ".join(r.value for r in staff.Role)


def args_staff_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, help=f"one of {ROLES}")
    p.add_argument("--password", required=True, help="at least 8 characters")
    _add_actor(p)
    _add_json(p)


def cmd_staff_add(args: argparse.Namespace) -> None:
    db = _db()
    account = staff.create_staff(db, _actor(db, args), email=args.email, name=args.name,
                                 role=args.role, password=args.password)
    _emit(args, _staff_dict(account), lambda a: "Added " + _render_staff(a))


def args_staff_set_role(p: argparse.ArgumentParser) -> None:
    p.add_argument("email", metavar="EMAIL")
    p.add_argument("role", metavar="ROLE", help=f"one of {ROLES}")
    _add_actor(p)
    _add_json(p)


def cmd_staff_set_role(args: argparse.Namespace) -> None:
    db = _db()
    account = staff.set_staff_role(db, _actor(db, args), args.email, args.role)
    _emit(args, _staff_dict(account), _render_staff)


def args_staff_account(p: argparse.ArgumentParser) -> None:
    p.add_argument("email", metavar="EMAIL")
    _add_actor(p)
    _add_json(p)


def _staff_active(active: bool) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        db = _db()
        account = staff.set_staff_active(db, _actor(db, args), args.email, active)
        _emit(args, _staff_dict(account), _render_staff)
    run.__name__ = "cmd_staff_activate" if active else "cmd_staff_deactivate"
    return run


cmd_staff_activate = _staff_active(True)
cmd_staff_deactivate = _staff_active(False)


def args_staff_reset_password(p: argparse.ArgumentParser) -> None:
    p.add_argument("email", metavar="EMAIL")
    p.add_argument("--temporary-password", required=True,
                   help="at least 8 characters; they choose their own at the next sign-in")
    _add_actor(p)
    _add_json(p)


def cmd_staff_reset_password(args: argparse.Namespace) -> None:
    db = _db()
    account = staff.reset_staff_password(db, _actor(db, args), args.email, args.temporary_password)
    _emit(args, _staff_dict(account), lambda a: "Temporary password set; sessions ended: "
          + _render_staff(a))


def cmd_staff_sign_out(args: argparse.Namespace) -> None:
    db = _db()
    ended = staff.sign_out_everywhere(db, _actor(db, args), args.email)
    _emit(args, {"email": args.email, "sessions_ended": ended},
          lambda r: f"Ended {r['sessions_ended']} session(s) of {r['email']}")


def cmd_staff_sessions(args: argparse.Namespace) -> None:
    db = _db()
    rows = [{"created_at": s.created_at.isoformat(), "last_seen_at": s.last_seen_at.isoformat(),
             "expires_at": s.expires_at.isoformat(), "method": s.method,
             "client_address": s.client_address, "user_agent": s.user_agent}
            for s in staff.staff_sessions_of(db, _actor(db, args), args.email)]
    _emit(args, rows, lambda items: _table(
        ["SIGNED IN", "LAST SEEN", "HOW", "ADDRESS"],
        [[r["created_at"][:16], r["last_seen_at"][:16], r["method"], r["client_address"]]
         for r in items]))


def args_staff_audit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--email", help="only entries about this account")
    p.add_argument("--limit", type=int, default=50)
    _add_actor(p)
    _add_json(p)


def cmd_staff_audit(args: argparse.Namespace) -> None:
    db = _db()
    limit = whole_number(args.limit, "--limit", minimum=1, maximum=10_000)
    rows = [{"at": e.at.isoformat(), "event": e.event.value, "success": e.success,
             "account": e.subject, "by": e.actor, "detail": e.detail, "address": e.client_address}
            for e in staff.audit_log(db, _actor(db, args), subject=args.email, limit=limit)]
    _emit(args, rows, lambda items: _table(
        ["AT", "EVENT", "OK", "ACCOUNT", "BY", "DETAIL"],
        [[r["at"][:19], r["event"], r["success"], r["account"], r["by"], r["detail"][:60]]
         for r in items]))


# -- the table of commands --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], None] | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    subcommands: tuple["Command", ...] = ()


STAFF_COMMANDS = (
    Command("list", "list staff accounts", cmd_staff_list, args_staff_list),
    Command("add", "create a staff account", cmd_staff_add, args_staff_add),
    Command("set-role", "change a staff member's role", cmd_staff_set_role, args_staff_set_role),
    Command("deactivate", "stop a staff account from signing in", cmd_staff_deactivate,
            args_staff_account),
    Command("activate", "let a deactivated staff account sign in again", cmd_staff_activate,
            args_staff_account),
    Command("reset-password", "set a temporary password (to be changed at the next sign-in)",
            cmd_staff_reset_password, args_staff_reset_password),
    Command("sessions", "a staff member's open sessions", cmd_staff_sessions, args_staff_account),
    Command("sign-out", "end every session of a staff member", cmd_staff_sign_out,
            args_staff_account),
    Command("audit", "the staff audit log: sign-ins, sign-outs, account changes", cmd_staff_audit,
            args_staff_audit),
)

COMMANDS = (
    Command("migrate", "apply database migrations", cmd_migrate),
    Command("seed", "add the demo catalog, customers, staff and demo orders", cmd_seed, args_seed),
    Command("catalog", "list SKUs and prices", cmd_catalog, _add_json),
    Command("orders", "list orders, newest first, with filters", cmd_orders, args_orders),
    Command("show", "one order in full: items, payments, refunds, timeline", cmd_show, args_show),
    Command("checkout", "sign in as a customer, place an order and charge the card",
            cmd_checkout, args_checkout),
    Command("pay", "charge the card for a Created order", cmd_pay, args_pay),
    Command("fulfill", "mark a Paid order fulfilled", cmd_fulfill, args_move(reason=True)),
    Command("cancel", "cancel a Created or Paid order (refunds a paid one)", cmd_cancel,
            args_move(reason=True)),
    Command("return", "return a Fulfilled order (refunds it)", cmd_return, args_move(reason=True)),
    Command("staff", "manage staff accounts", subcommands=STAFF_COMMANDS),
    # Bulk jobs go here: bulk, jobs, job, worker, export.
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orders_core", description="Orders Desk from the command line.",
        epilog="Exit codes: 0 ok, 1 refused by a business rule, 2 bad usage, 3 unexpected "
               "failure (ORDERS_DEBUG=1 shows its traceback). The database comes from "
               "ORDERS_DATABASE_URL / ORDERS_DATA_DIR.")
    _add_commands(parser, commands)
    return parser


def _add_commands(parser: argparse.ArgumentParser, commands: Sequence[Command]) -> None:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.arguments:
            command.arguments(p)
        if command.subcommands:
            _add_commands(p, command.subcommands)
        p.set_defaults(run=command.run, parser=p)
    if commands is COMMANDS:  # bulk jobs: bulk, jobs, job, worker (orders_core/cli_jobs.py)
        from .cli_jobs import register; register(sub)  # noqa: E702
        from .cli_export import register as register_export; register_export(sub)  # noqa: E702


# -- running: exit codes, errors on stderr, no secrets ----------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = None
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
        sys.stdout.flush()
        return EXIT_OK
    except ConfigError as error:  # a malformed setting is a usage error, like a bad flag
        _say(f"error: {error}", args)
        return EXIT_USAGE
    except OrdersError as error:
        _say(f"error: {error}", args)
        return EXIT_REFUSED
    except SystemExit as done:  # argparse (code 2 or 0)
        if isinstance(done.code, str):
            _say(f"error: {done.code}", args)
            return EXIT_USAGE
        return EXIT_OK if done.code is None else done.code
    except KeyboardInterrupt:
        _say("error: interrupted", args)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if os.environ.get("ORDERS_DEBUG") == "1":
            print(_redact("".join(traceback.format_exception(error)), args), end="",
                  file=sys.stderr)
        _say(f"error: unexpected failure: {type(error).__name__}: {error}", args,
             first_line=True)
        return EXIT_UNEXPECTED


def _say(message: str, args: argparse.Namespace | None, *, first_line: bool = False) -> None:
    """One redacted line on stderr. Unexpected errors keep their first line only
    (SQLAlchemy appends the SQL and its parameters); refusals are joined into one."""
    lines = message.strip().splitlines() or [""]
    line = lines[0] if first_line else " ".join(part.strip() for part in lines)
    print(_redact(line, args)[:2000], file=sys.stderr)


_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)[^\s@/]+@")
_API_KEY = re.compile(r"\b((?:sk|rk|whsec)_(?:test_|live_)?)[A-Za-z0-9_]+")


def _redact(text: str, args: argparse.Namespace | None) -> str:
    secrets = [getattr(args, "password", None), os.environ.get("STRIPE_API_KEY")]
    url = os.environ.get("ORDERS_DATABASE_URL")
    if url:
        try:
            from sqlalchemy.engine import make_url
            secrets.append(make_url(url).password)
        except Exception:  # noqa: BLE001 - an unparseable URL is redacted by pattern below
            pass
    for secret in secrets:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _API_KEY.sub(r"\1***", text)


if __name__ == "__main__":
    sys.exit(main())
