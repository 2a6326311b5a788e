"""Stripe's events from the command line: `webhooks list | process`, and the simulated
gateway's offline demos of money moving outside Orders Desk: `gateway refund-outside |
dispute | close-dispute` (each delivers its Stripe event into the inbox and applies it)."""

from __future__ import annotations

import argparse

from .. import payment_events
from ..staff import SYSTEM
from ..stripe_events import process_pending_events
from ..stripe_events import simulated as simulated_events
from .common import Command, acting_actor, add_actor, add_json, emit, open_db, table, whole_number_option


# -- webhooks -------------------------------------------------------------------------------
def args_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unmatched", action="store_true", help="only events that match no order of ours")
    p.add_argument(
        "--limit", type=whole_number_option("Limit", 1, payment_events.MAX_LISTED_EVENTS), default=50
    )
    add_actor(p)
    add_json(p)


def _render_events(rows: list[dict]) -> str:
    if not rows:
        return "No Stripe events."
    return table(
        ["received_at", "event", "type", "object", "outcome", "order", "detail"],
        [
            [
                r["received_at"],
                r["event_id"],
                r["type"],
                r["object_id"],
                r["outcome"],
                r["order_number"],
                r["detail"] or r["error"],
            ]
            for r in rows
        ],
    )


def cmd_list(args: argparse.Namespace) -> None:
    db = open_db()
    events = payment_events.list_stripe_events(
        db, actor=acting_actor(db, args), unmatched=args.unmatched, limit=args.limit
    )
    emit(args, [e.as_json() for e in events], _render_events)


def args_process(p: argparse.ArgumentParser) -> None:
    add_json(p)


def cmd_process(args: argparse.Namespace) -> None:
    db = open_db()
    handled = process_pending_events(db, limit=10_000)
    emit(args, {"processed": handled}, lambda d: f"processed {d['processed']} Stripe event(s)")


# -- the simulated gateway --------------------------------------------------------------------
def _deliver_and_apply(args: argparse.Namespace, db, delivered: simulated_events.Delivered) -> None:
    process_pending_events(db, limit=10_000)
    [event] = [
        e
        for e in payment_events.list_stripe_events(db, actor=SYSTEM, limit=50)
        if e.event_id == delivered.received.event_id
    ] or [None]
    data = {
        "order": delivered.order_number,
        "object": delivered.object_id,
        "event": delivered.received.event_id,
        "type": delivered.event_type,
        "outcome": event.outcome if event else "pending",
        "detail": event.detail if event else None,
    }
    emit(
        args,
        data,
        lambda d: f"{d['type']} {d['object']} for {d['order']}: {d['outcome']}\n{d['detail'] or ''}".rstrip(),
    )


def args_refund_outside(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", metavar="NUMBER", help="order number, e.g. ORD-000123")
    p.add_argument(
        "--amount",
        type=whole_number_option("Amount", 1, 10**12),
        help="minor units (cents); default: all that is left to refund",
    )
    add_json(p)


def cmd_refund_outside(args: argparse.Namespace) -> None:
    db = open_db()
    _deliver_and_apply(args, db, simulated_events.refund_outside(db, args.number, amount=args.amount))


def args_dispute(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", metavar="NUMBER", help="order number, e.g. ORD-000123")
    p.add_argument("--reason", default="fraudulent", choices=simulated_events.DISPUTE_REASONS)
    p.add_argument(
        "--amount", type=whole_number_option("Amount", 1, 10**12), help="default: the whole charge"
    )
    add_json(p)


def cmd_dispute(args: argparse.Namespace) -> None:
    db = open_db()
    _deliver_and_apply(
        args, db, simulated_events.open_dispute(db, args.number, reason=args.reason, amount=args.amount)
    )


def args_close_dispute(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", metavar="NUMBER", help="order number, e.g. ORD-000123")
    p.add_argument("--status", default="won", choices=simulated_events.CLOSING_STATUSES)
    add_json(p)


def cmd_close_dispute(args: argparse.Namespace) -> None:
    db = open_db()
    _deliver_and_apply(args, db, simulated_events.close_dispute(db, args.number, status=args.status))


COMMANDS = (
    Command(
        "webhooks",
        "Stripe's events received through POST /webhooks/stripe (and the simulated gateway's)",
        subcommands=(
            Command("list", "the newest events with what was done with each", cmd_list, args_list),
            Command(
                "process",
                "apply the events still pending now (workers do this too)",
                cmd_process,
                args_process,
            ),
        ),
    ),
    Command(
        "gateway",
        "the simulated gateway's offline demos of money moving outside Orders Desk",
        subcommands=(
            Command(
                "refund-outside",
                "refund the order's charge at the gateway, as if in the Stripe Dashboard",
                cmd_refund_outside,
                args_refund_outside,
            ),
            Command(
                "dispute", "open a dispute (chargeback) of the order's charge", cmd_dispute, args_dispute
            ),
            Command(
                "close-dispute",
                "close the order's open dispute as won or lost",
                cmd_close_dispute,
                args_close_dispute,
            ),
        ),
    ),
)
