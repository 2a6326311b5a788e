"""The process's Database for the HTTP routes: the same cached engine the pages use."""

from __future__ import annotations

from orders_core.db import Database, open_database


def database() -> Database:
    return open_database()
