"""Fixtures of the reliability suite.

Every test here runs with logging captured at DEBUG (SQLAlchemy at INFO: each
statement and its parameters; the rows it reads back are the database scan's job)
and fails if any log record holds a Stripe secret key, a webhook secret or a
Luhn-valid card number. A test that plants such a thing on purpose says so with
@pytest.mark.plants_secrets and checks the records itself. A test that runs tens of
thousands of statements on data it made itself may leave SQLAlchemy at WARNING with
@pytest.mark.quiet_sql (the state machine: logging every statement triples its time).
"""

from __future__ import annotations

import logging

import pytest

from tests.reliability.evidence import RecordingHandler
from tests.reliability.shop import Shop, build_shop


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "plants_secrets: the test puts a secret or card number where the "
        "log scan would see it on purpose, and checks the records itself",
    )
    config.addinivalue_line("markers", "quiet_sql: the DEBUG log scan leaves SQLAlchemy's statements out")


@pytest.fixture(autouse=True)
def debug_log(request) -> RecordingHandler:
    """Every log record of the test, at DEBUG; scanned for secrets at the end."""
    handler = RecordingHandler()
    root, sqlalchemy_logger = logging.getLogger(), logging.getLogger("sqlalchemy")
    levels = root.level, sqlalchemy_logger.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = request.node.get_closest_marker("quiet_sql") is not None
    sqlalchemy_logger.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        sqlalchemy_logger.setLevel(levels[1])
    if request.node.get_closest_marker("plants_secrets") is None:
        findings = handler.findings()
        assert not findings, (
            f"{len(findings)} secret(s) or card number(s) in the DEBUG log "
            f"of {len(handler.texts)} records: " + "; ".join(map(str, findings[:10]))
        )


@pytest.fixture
def shop(db) -> Shop:
    return build_shop(db)


@pytest.fixture
def sqlite_shop(sqlite_db) -> Shop:
    return build_shop(sqlite_db)
