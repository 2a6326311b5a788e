"""Databases at an older schema, for the tests of what a migration does to existing rows."""

from __future__ import annotations

from alembic import command

from orders_core.db import _alembic_config


def upgrade_to(engine, revision: str) -> None:
    """Migrate the database behind `engine` up to `revision` only (not to the head)."""
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
