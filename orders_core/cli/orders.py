"""The order commands of `python -m orders_core`: migrate, seed, catalog, orders, show,
checkout, pay, fulfill, cancel, return."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable

from .. import catalog, checkout, customers, lifecycle, order_counts, queries
from ..errors import OrdersError
from ..order_detail import OrderDetail
from ..order_listing import stream_orders
from ..order_numbers import format_order_number
from ..staff import SYSTEM
from .common import (
    Command,
    acting_actor,
    add_actor,
    add_json,
    add_order_filters,
    cell,
    emit,
    indent,
    money_text,
    open_db,
    order_filters,
    table,
    whole_number_option,
)

MAX_SEED_ORDERS = 5_000_000


def emit_order(args: argparse.Namespace, order: OrderDetail) -> None:
    """The order in the printed shape (OrderDetail.as_dict), as JSON or as text."""
    emit(args, order.as_dict(), render_order)


def render_order(order: dict) -> str:
    """The text form of the printed shape (OrderDetail.as_dict)."""
    cur = order["currency"]
    customer = order["customer"]
    lines = [
        f"{cell(order['number'])}  {order['status'].capitalize()}",
        f"Customer:  {cell(customer['name'])} <{cell(customer['email'])}>",
        f"Total:     {money_text(order['total_amount'], cur)}"
        + (f" (refunded {money_text(order['refunded_amount'], cur)})" if order["refunded_amount"] else ""),
    ]
    for label in ("created", "paid", "fulfilled", "canceled", "returned"):
        if order.get(f"{label}_at"):
            lines.append(f"{label.capitalize() + ':':<11}{order[f'{label}_at']}")
    address = order.get("shipping_address")
    if address:
        parts = [
            address["name"],
            address["line1"],
            address["line2"],
            address["city"],
            " ".join(p for p in (address["region"], address["postal_code"]) if p),
            address["country"],
        ]
        lines.append(f"Ship to:   {cell(', '.join(p for p in parts if p))}")
    lines += [
        "",
        "Items",
        indent(
            table(
                ["SKU", "NAME", "QTY", "UNIT", "AMOUNT"],
                [
                    [
                        i["sku"],
                        i["name"],
                        i["quantity"],
                        money_text(i["unit_amount"], cur),
                        money_text(i["amount"], cur),
                    ]
                    for i in order["items"]
                ],
            )
        ),
    ]
    if order["payment_attempts"]:
        lines += [
            "",
            "Payments",
            indent(
                table(
                    ["AT", "GATEWAY", "ID", "AMOUNT", "STATUS", "FAILURE"],
                    [
                        [
                            p["created_at"],
                            p["gateway"],
                            p["gateway_payment_id"],
                            money_text(p["amount"], p["currency"]),
                            p["status"],
                            p["failure_message"] or "",
                        ]
                        for p in order["payment_attempts"]
                    ],
                )
            ),
        ]
    if order["refunds"]:
        lines += [
            "",
            "Refunds",
            indent(
                table(
                    ["AT", "ID", "AMOUNT", "STATUS", "ACTION", "BY"],
                    [
                        [
                            r["created_at"],
                            r["gateway_refund_id"],
                            money_text(r["amount"], r["currency"]),
                            r["status"],
                            r["action"],
                            r["actor"],
                        ]
                        for r in order["refunds"]
                    ],
                )
            ),
        ]
    lines += [
        "",
        "Timeline",
        indent(
            table(
                ["AT", "BY", "ACTION", "STATUS", "NOTE"],
                [
                    [
                        e["at"],
                        e["actor"],
                        e["action"],
                        f"{e['from_status'] or ''} → {e['to_status']}".lstrip() if e["to_status"] else "",
                        e["note"],
                    ]
                    for e in order["events"]
                ],
            )
        ),
    ]
    return "\n".join(lines)


def cmd_migrate(args: argparse.Namespace) -> None:
    open_db()  # opening applies any pending migration
    print("schema up to date")


def args_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--orders",
        type=whole_number_option("Orders", 0, MAX_SEED_ORDERS),
        default=2000,
        metavar="N",
        help=f"orders to append (0..{MAX_SEED_ORDERS:,}; default 2000)",
    )
    p.add_argument(
        "--random-seed",
        type=whole_number_option("Random seed", 0, 2**63 - 1),
        default=1,
        metavar="S",
        help="seed of the generator (default 1)",
    )
    add_json(p)


def cmd_seed(args: argparse.Namespace) -> None:
    from .. import demo  # a large module that only this command needs

    report = demo.seed(open_db(), orders=args.orders, random_seed=args.random_seed)
    emit(
        args,
        dataclasses.asdict(report),
        lambda data: (
            report.summary()
            if callable(getattr(report, "summary", None))
            else "\n".join(f"{key}: {value}" for key, value in data.items())
        ),
    )


def cmd_catalog(args: argparse.Namespace) -> None:
    listings = [sku.as_dict() for sku in catalog.list_skus(open_db())]
    emit(
        args,
        listings,
        lambda rows: table(
            ["CODE", "NAME", "PRODUCT", "SHIPS", "PRICE", "ACTIVE"],
            [
                [
                    r["code"],
                    r["name"],
                    r["product"],
                    r["shippable"],
                    money_text(r["unit_amount"], r["currency"]),
                    r["active"],
                ]
                for r in rows
            ],
        ),
    )


def args_orders(p: argparse.ArgumentParser) -> None:
    add_order_filters(p)
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit",
        type=whole_number_option("Limit", 1, 2**63 - 1),
        default=50,
        metavar="N",
        help="at most N orders, newest first (default 50; any N ≥ 1)",
    )
    how_many.add_argument("--all", action="store_true", help="every matching order")
    p.add_argument(
        "--after",
        metavar="NUMBER",
        help="start after this order in the list (e.g. the last one of the previous page)",
    )
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print machine-readable JSON (a list)")
    shape.add_argument(
        "--jsonl",
        action="store_true",
        help="one JSON object per line, streamed (flat memory at any count; for --all)",
    )
    shape.add_argument("--count", action="store_true", help="print only how many orders match")


def cmd_orders(args: argparse.Namespace) -> None:
    """Orders read in keyset chunks (orders_core/order_listing.py): --json and --jsonl
    write each chunk as it comes; the table is built from the rows at the end."""
    filters = order_filters(args)
    db = open_db()
    if args.count:
        print(queries.list_orders(db, filters, actor=SYSTEM, page_size=1).total)
        return
    rows = stream_orders(db, filters, actor=SYSTEM, limit=None if args.all else args.limit, after=args.after)
    try:
        if args.jsonl:
            for row in rows:
                sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        elif args.json:  # the same text as json.dumps(list, indent=2), one row at a time
            sys.stdout.write("[")
            written = 0
            for row in rows:
                text = json.dumps(row, indent=2, ensure_ascii=False, default=str)
                sys.stdout.write(("," if written else "") + "\n  " + text.replace("\n", "\n  "))
                written += 1
            sys.stdout.write("\n]\n" if written else "]\n")
        else:
            listed = list(rows)
            total = queries.list_orders(db, filters, actor=SYSTEM, page_size=1).total if listed else 0
            print(render_orders(listed, total, filters, after=args.after))
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def render_orders(
    rows: list[dict], total: int, filters: queries.OrderFilters, *, after: str | None = None
) -> str:
    if not rows:
        return f"No orders ({filters.describe()}{f', after {after}' if after else ''})."
    return "\n".join(
        [
            table(
                ["NUMBER", "STATUS", "CREATED", "CUSTOMER", "ITEMS", "TOTAL", "REFUNDED"],
                [
                    [
                        r["number"],
                        r["status"],
                        r["created_at"],
                        r["customer_email"],
                        r["item_count"],
                        money_text(r["total_amount"], r["currency"]),
                        money_text(r["refunded_amount"], r["currency"]) if r["refunded_amount"] else "",
                    ]
                    for r in rows
                ],
            ),
            f"{len(rows)} of {total} orders ({filters.describe()}), newest first"
            + (f", after {after}." if after else "."),
        ]
    )


def args_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", metavar="NUMBER", help="order number, e.g. ORD-000123")
    add_json(p)


def cmd_show(args: argparse.Namespace) -> None:
    emit_order(args, queries.order_detail(open_db(), args.number, actor=SYSTEM))


def cart_item_option(text: str) -> tuple[str, str]:
    """SKU_CODE:QTY → (code, quantity text); checkout's own validators check both."""
    code, colon, quantity = text.rpartition(":")
    if not colon or not code.strip() or not quantity.strip():
        raise argparse.ArgumentTypeError(f"{text[:60]!r} is not SKU_CODE:QUANTITY (e.g. TOTE-USD:2)")
    return code.strip(), quantity.strip()


ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")


def args_checkout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--email", required=True, help="the customer's account")
    p.add_argument("--password", required=True, help="the customer's password")
    p.add_argument(
        "--item",
        dest="items",
        action="append",
        required=True,
        type=cart_item_option,
        metavar="SKU_CODE:QTY",
        help="a line of the order; repeat for more",
    )
    p.add_argument("--token", required=True, help="card token, e.g. tok_visa")
    p.add_argument("--address-id", metavar="ID", help="one of the customer's saved addresses")
    for field in ADDRESS_FIELDS:
        p.add_argument(
            f"--address-{field.replace('_', '-')}",
            dest=f"address_{field}",
            metavar="TEXT",
            help=f"shipping address: {field.replace('_', ' ')}",
        )
    p.add_argument(
        "--checkout-key",
        metavar="KEY",
        help="idempotency key: repeating it returns the first order, charged once; "
        "after a decline it pays that order with the new --token",
    )
    add_json(p)


def cmd_checkout(args: argparse.Namespace) -> None:
    given = {
        f: getattr(args, f"address_{f}") for f in ADDRESS_FIELDS if getattr(args, f"address_{f}") is not None
    }
    if args.address_id is not None and given:
        args.parser.error("give either --address-id or the --address-* fields, not both")
    address = customers.AddressInput(**{f: given.get(f, "") for f in ADDRESS_FIELDS}) if given else None
    db = open_db()
    customer = customers.sign_in(db, email=args.email, password=args.password)
    order = checkout.submit_checkout(
        db,
        customer,
        items=args.items,
        token=args.token,
        address_id=args.address_id,
        address=address,
        checkout_key=args.checkout_key,
    )
    emit_order(args, order)


def args_move(*, reason: bool) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("number", metavar="NUMBER", help="order number, e.g. ORD-000123")
        add_actor(p)
        if reason:
            p.add_argument("--reason", default="", help="why; kept in the order's timeline")
        add_json(p)

    return add


def args_pay(p: argparse.ArgumentParser) -> None:
    args_move(reason=False)(p)
    p.add_argument("--token", required=True, help="card token, e.g. tok_visa")


def cmd_pay(args: argparse.Namespace) -> None:
    db = open_db()
    emit_order(args, checkout.pay_order(db, acting_actor(db, args), args.number, token=args.token))


def _move(service) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        db = open_db()
        emit_order(args, service(db, acting_actor(db, args), args.number, reason=args.reason))

    run.__name__ = f"cmd_{service.__name__}"
    return run


def args_fulfill(p: argparse.ArgumentParser) -> None:
    args_move(reason=True)(p)
    p.add_argument("--confirm-disputed", action="store_true", help="fulfil even though the order is disputed")


def cmd_fulfill(args: argparse.Namespace) -> None:
    db = open_db()
    order = lifecycle.fulfill_order(
        db, acting_actor(db, args), args.number, reason=args.reason, confirm_disputed=args.confirm_disputed
    )
    emit_order(args, order)


cmd_cancel = _move(lifecycle.cancel_order)
cmd_return = _move(lifecycle.return_order)


def args_counts(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--check",
        action="store_true",
        help="compare the kept counts with the orders (the default); exit 1 if they differ",
    )
    what.add_argument("--rebuild", action="store_true", help="recount them from the orders")
    add_json(p)


def cmd_counts(args: argparse.Namespace) -> None:
    db = open_db()
    if args.rebuild:
        rows = order_counts.rebuild(db)
        sku_rows = order_counts.rebuild_sku_rows(db)
        emit(
            args,
            {"rebuilt": rows, "rebuilt_order_skus": sku_rows},
            lambda r: (
                f"Recounted from the orders: {r['rebuilt']} rows; "
                f"each order's SKUs refilled: {r['rebuilt_order_skus']} rows."
            ),
        )
        return
    found = [
        {
            "day": m.day.isoformat(),
            "status": m.status,
            "currency": m.currency,
            "kept": m.kept,
            "counted": m.counted,
        }
        for m in order_counts.mismatches(db)
    ]
    # order_skus rows that differ: "kept" and "counted" are "status created_at total currency",
    # or null.
    sku_rows = [
        {
            "order": format_order_number(m.order_id),
            "sku_id": m.sku_id,
            "kept": _sku_row_text(m.kept),
            "counted": _sku_row_text(m.counted),
        }
        for m in order_counts.sku_row_mismatches(db)
    ]
    emit(
        args,
        found + sku_rows,
        lambda rows: (
            "The kept counts agree with the orders."
            if not rows
            else "\n".join(
                part
                for part in (
                    found
                    and table(
                        ["DAY", "STATUS", "CURRENCY", "KEPT", "COUNTED"],
                        [[r["day"], r["status"], r["currency"], r["kept"], r["counted"]] for r in found],
                    ),
                    sku_rows
                    and table(
                        ["ORDER", "SKU ID", "KEPT (order_skus)", "COUNTED"],
                        [[r["order"], r["sku_id"], r["kept"] or "-", r["counted"] or "-"] for r in sku_rows],
                    ),
                )
                if part
            )
        ),
    )
    if found or sku_rows:
        raise OrdersError(
            f"{len(found) + len(sku_rows)} kept counts or SKU rows differ from the orders; "
            "`python -m orders_core counts --rebuild` recounts them."
        )


def _sku_row_text(side) -> str | None:
    return None if side is None else f"{side[0]} {side[1].isoformat(sep=' ')} {side[2]} {side[3]}"


COMMANDS = (
    Command("migrate", "apply database migrations", cmd_migrate),
    Command(
        "counts",
        "check (or rebuild) what the orders page reads kept with the orders: the per-day "
        "counts and each order's SKUs",
        cmd_counts,
        args_counts,
    ),
    Command("seed", "add the demo catalog, customers, staff and demo orders", cmd_seed, args_seed),
    Command("catalog", "list SKUs and prices", cmd_catalog, add_json),
    Command("orders", "list orders, newest first, with filters", cmd_orders, args_orders),
    Command("show", "one order in full: items, payments, refunds, timeline", cmd_show, args_show),
    Command(
        "checkout", "sign in as a customer, place an order and charge the card", cmd_checkout, args_checkout
    ),
    Command("pay", "charge the card for a Created order", cmd_pay, args_pay),
    Command("fulfill", "mark a Paid order fulfilled", cmd_fulfill, args_fulfill),
    Command(
        "cancel", "cancel a Created or Paid order (refunds a paid one)", cmd_cancel, args_move(reason=True)
    ),
    Command("return", "return a Fulfilled order (refunds it)", cmd_return, args_move(reason=True)),
)
