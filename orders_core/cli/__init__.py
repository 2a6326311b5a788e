"""The command line: `python -m orders_core COMMAND ...`.

Each command is one small function in the module of its concern (orders, staff,
jobs, export), listed there as a `Command`; COMMANDS below is the one table of them
all, and the parser is built from it. Commands that print data take --json (JSON on
stdout) and otherwise print a plain-text table or summary. Input is checked by
orders_core's own validators, so the CLI refuses bad input exactly as the pages do.
Modules with heavy dependencies (DuckDB, pyarrow, the demo seed) are imported by the
commands that need them, when they run.

Exit codes
  0  success
  1  a business rule refused (any OrdersError): the message on stderr, "error: ..."
  2  bad usage: unknown command, malformed option, conflicting options, bad settings
  4  `reconcile` only: mismatches were found (the report is printed)
  3  an unexpected failure: "error: unexpected failure: Type: message" on stderr;
     ORDERS_DEBUG=1 adds the traceback
  141  stdout was closed early (`... | head`)
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from ..config import ConfigError, load_settings
from ..errors import OrdersError
from . import export, jobs, orders, reconcile, staff, webhooks
from .common import Command
from .redaction import redact

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNEXPECTED = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # as if killed by SIGPIPE, like other Unix tools in a pipeline

COMMANDS: tuple[Command, ...] = (
    orders.COMMANDS
    + staff.COMMANDS
    + jobs.COMMANDS
    + export.COMMANDS
    + reconcile.COMMANDS
    + webhooks.COMMANDS
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orders_core",
        description="Orders Desk from the command line.",
        epilog="Exit codes: 0 ok, 1 refused by a business rule, 2 bad usage, 3 unexpected "
        "failure (ORDERS_DEBUG=1 shows its traceback). The database comes from "
        "ORDERS_DATABASE_URL / ORDERS_DATA_DIR.",
    )
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
        if _debug():
            print(redact("".join(traceback.format_exception(error)), args), end="", file=sys.stderr)
        _say(f"error: unexpected failure: {type(error).__name__}: {error}", args, first_line=True)
        return EXIT_UNEXPECTED


def _say(message: str, args: argparse.Namespace | None, *, first_line: bool = False) -> None:
    """One redacted line on stderr. Unexpected errors keep their first line only
    (SQLAlchemy appends the SQL and its parameters); refusals are joined into one."""
    lines = message.strip().splitlines() or [""]
    line = lines[0] if first_line else " ".join(part.strip() for part in lines)
    print(redact(line, args)[:2000], file=sys.stderr)


__all__ = [
    "main",
    "build_parser",
    "COMMANDS",
    "Command",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "EXIT_UNEXPECTED",
]


def _debug() -> bool:
    """ORDERS_DEBUG, read through Settings; a malformed setting is not the failure to explain."""
    try:
        return load_settings().debug
    except ConfigError:
        return False
