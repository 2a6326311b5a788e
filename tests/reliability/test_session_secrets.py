"""Promise 5, for sessions: a session token or a password is never in a log record, an
error message or the database; the database keeps only the token's SHA-256.

The log is captured at DEBUG (SQLAlchemy's statements and parameters included) by
this suite's conftest. The tokens are random, so the scan looks for their exact text."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orders_core import authentication as auth
from orders_core import demo, sessions, staff
from orders_core.errors import OrdersError
from orders_core.schema import staff_sessions
from tests.reliability.evidence import _tables

PASSWORD = demo.DEMO_PASSWORD
NEW_PASSWORD = "a-new-secret-passphrase"


def database_texts(db) -> list[str]:
    texts = []
    with db.read() as conn:
        for table in _tables(db):
            for row in conn.execute(select(table)):
                texts += [str(v) for v in row if isinstance(v, str)]
    return texts


def test_tokens_and_passwords_appear_nowhere_but_the_browser(sqlite_db, debug_log):
    db = sqlite_db
    demo.ensure_demo_staff(db)
    errors: list[OrdersError] = []
    tokens = []
    for _ in range(2):
        tokens.append(
            auth.sign_in_with_password(
                db, "ops@ordersdesk.test", PASSWORD, client_address="203.0.113.9"
            ).token
        )
    tokens.append(
        auth.sign_in_with_identity(
            db, email="support@ordersdesk.test", email_verified=True, provider="okta"
        ).token
    )
    for token in tokens:
        assert isinstance(auth.current_session(db, token), auth.SignedIn)
    for attempt in ("wrong-" + PASSWORD, PASSWORD + "x"):
        with pytest.raises(OrdersError) as refused:
            auth.sign_in_with_password(db, "ops@ordersdesk.test", attempt)
        errors.append(refused.value)
    ops = staff.find_staff(db, "ops@ordersdesk.test").as_actor()
    staff.change_own_password(db, ops, PASSWORD, NEW_PASSWORD)
    auth.sign_out(db, tokens[2])
    with pytest.raises(OrdersError) as refused:
        staff.change_own_password(db, ops, "not it", "another-passphrase-1")
    errors.append(refused.value)

    secrets_ = tokens + [PASSWORD, NEW_PASSWORD, "wrong-" + PASSWORD]
    logged = "\n".join(text for _, text in debug_log.texts)
    assert "staff_sessions" in logged, "SQLAlchemy's statements were not captured"
    stored = database_texts(db)
    for secret in secrets_:
        assert secret not in logged, "a token or password was logged"
        assert not any(secret in text for text in stored), "a token or password was stored"
        assert not any(secret in f"{e!s} {e!r}" for e in errors), "an error repeats a secret"
    with db.read() as conn:
        hashes = set(conn.execute(select(staff_sessions.c.token_hash)).scalars())
    assert hashes == {sessions.token_hash(t) for t in tokens}
