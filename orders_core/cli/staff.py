"""The `staff` commands of `python -m orders_core`: list, add, set-role, deactivate,
activate, reset-password, sessions, sign-out, audit."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .. import staff as staff_accounts
from ..validation import whole_number
from .common import Command, acting_actor, add_actor, add_json, cell, emit, open_db, table


def _staff_dict(account: staff_accounts.StaffAccount) -> dict:
    return {
        "id": account.id,
        "email": account.email,
        "name": account.name,
        "role": account.role.value,
        "active": account.active,
    }


def _render_staff(account: dict) -> str:
    state = "active" if account["active"] else "deactivated"
    return f"{cell(account['email'])} ({cell(account['name'])}): {account['role']}, {state}"


def args_staff_list(p: argparse.ArgumentParser) -> None:
    add_actor(p)
    add_json(p)


def cmd_staff_list(args: argparse.Namespace) -> None:
    db = open_db()
    accounts = [_staff_dict(a) for a in staff_accounts.list_staff(db, acting_actor(db, args))]
    emit(
        args,
        accounts,
        lambda rows: table(
            ["EMAIL", "NAME", "ROLE", "ACTIVE"],
            [[a["email"], a["name"], a["role"], a["active"]] for a in rows],
        ),
    )


ROLES = ", ".join(r.value for r in staff_accounts.Role)


def args_staff_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, help=f"one of {ROLES}")
    p.add_argument("--password", required=True, help="at least 8 characters")
    add_actor(p)
    add_json(p)


def cmd_staff_add(args: argparse.Namespace) -> None:
    db = open_db()
    account = staff_accounts.create_staff(
        db, acting_actor(db, args), email=args.email, name=args.name, role=args.role, password=args.password
    )
    emit(args, _staff_dict(account), lambda a: "Added " + _render_staff(a))


def args_staff_set_role(p: argparse.ArgumentParser) -> None:
    p.add_argument("email", metavar="EMAIL")
    p.add_argument("role", metavar="ROLE", help=f"one of {ROLES}")
    add_actor(p)
    add_json(p)


def cmd_staff_set_role(args: argparse.Namespace) -> None:
    db = open_db()
    account = staff_accounts.set_staff_role(db, acting_actor(db, args), args.email, args.role)
    emit(args, _staff_dict(account), _render_staff)


def args_staff_account(p: argparse.ArgumentParser) -> None:
    p.add_argument("email", metavar="EMAIL")
    add_actor(p)
    add_json(p)


def _staff_active(active: bool) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        db = open_db()
        account = staff_accounts.set_staff_active(db, acting_actor(db, args), args.email, active)
        emit(args, _staff_dict(account), _render_staff)

    run.__name__ = "cmd_staff_activate" if active else "cmd_staff_deactivate"
    return run


cmd_staff_activate = _staff_active(True)
cmd_staff_deactivate = _staff_active(False)


def args_staff_reset_password(p: argparse.ArgumentParser) -> None:
    p.add_argument("email", metavar="EMAIL")
    p.add_argument(
        "--temporary-password",
        required=True,
        help="at least 8 characters; they choose their own at the next sign-in",
    )
    add_actor(p)
    add_json(p)


def cmd_staff_reset_password(args: argparse.Namespace) -> None:
    db = open_db()
    account = staff_accounts.reset_staff_password(
        db, acting_actor(db, args), args.email, args.temporary_password
    )
    emit(args, _staff_dict(account), lambda a: "Temporary password set; sessions ended: " + _render_staff(a))


def cmd_staff_sign_out(args: argparse.Namespace) -> None:
    db = open_db()
    ended = staff_accounts.sign_out_everywhere(db, acting_actor(db, args), args.email)
    emit(
        args,
        {"email": args.email, "sessions_ended": ended},
        lambda r: f"Ended {r['sessions_ended']} session(s) of {r['email']}",
    )


def cmd_staff_sessions(args: argparse.Namespace) -> None:
    db = open_db()
    rows = [
        {
            "created_at": s.created_at.isoformat(),
            "last_seen_at": s.last_seen_at.isoformat(),
            "expires_at": s.expires_at.isoformat(),
            "method": s.method,
            "client_address": s.client_address,
            "user_agent": s.user_agent,
        }
        for s in staff_accounts.staff_sessions_of(db, acting_actor(db, args), args.email)
    ]
    emit(
        args,
        rows,
        lambda items: table(
            ["SIGNED IN", "LAST SEEN", "HOW", "ADDRESS"],
            [[r["created_at"][:16], r["last_seen_at"][:16], r["method"], r["client_address"]] for r in items],
        ),
    )


def args_staff_audit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--email", help="only entries about this account")
    p.add_argument("--limit", type=int, default=50)
    add_actor(p)
    add_json(p)


def cmd_staff_audit(args: argparse.Namespace) -> None:
    db = open_db()
    limit = whole_number(args.limit, "--limit", minimum=1, maximum=10_000)
    rows = [
        {
            "at": e.at.isoformat(),
            "event": e.event.value,
            "success": e.success,
            "account": e.subject,
            "by": e.actor,
            "detail": e.detail,
            "address": e.client_address,
        }
        for e in staff_accounts.audit_log(db, acting_actor(db, args), subject=args.email, limit=limit)
    ]
    emit(
        args,
        rows,
        lambda items: table(
            ["AT", "EVENT", "OK", "ACCOUNT", "BY", "DETAIL"],
            [
                [r["at"][:19], r["event"], r["success"], r["account"], r["by"], r["detail"][:60]]
                for r in items
            ],
        ),
    )


SUBCOMMANDS = (
    Command("list", "list staff accounts", cmd_staff_list, args_staff_list),
    Command("add", "create a staff account", cmd_staff_add, args_staff_add),
    Command("set-role", "change a staff member's role", cmd_staff_set_role, args_staff_set_role),
    Command("deactivate", "stop a staff account from signing in", cmd_staff_deactivate, args_staff_account),
    Command(
        "activate", "let a deactivated staff account sign in again", cmd_staff_activate, args_staff_account
    ),
    Command(
        "reset-password",
        "set a temporary password (to be changed at the next sign-in)",
        cmd_staff_reset_password,
        args_staff_reset_password,
    ),
    Command("sessions", "a staff member's open sessions", cmd_staff_sessions, args_staff_account),
    Command("sign-out", "end every session of a staff member", cmd_staff_sign_out, args_staff_account),
    Command(
        "audit",
        "the staff audit log: sign-ins, sign-outs, account changes",
        cmd_staff_audit,
        args_staff_audit,
    ),
)


COMMANDS = (Command("staff", "manage staff accounts", subcommands=SUBCOMMANDS),)
