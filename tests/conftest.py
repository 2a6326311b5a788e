"""Fixtures shared by every test.

Databases
  database_url   a fresh, migrated, empty database for this test; parametrized, so a
                 test that uses it runs twice: [sqlite] and [postgresql] (the latter
                 carries the `postgres` marker).
  db             orders_core.db.open_database(database_url): the Database on it.
  sqlite_database_url / sqlite_db       the SQLite variant only (not parametrized).
  postgres_database_url / postgres_db   the PostgreSQL variant only (mark such tests
                 with @pytest.mark.postgres yourself).
  postgres_server  session-wide base URL of the throwaway PostgreSQL 15 server
                 (or of ORDERS_TEST_POSTGRES_URL when that is set).

Every test session writes into a temporary ORDERS_DATA_DIR, never into data/.

Parallel runs (pytest-xdist, `-n 2 --dist loadfile`: what scripts/test.sh does)
  Each worker process has its own session fixtures (PostgreSQL cluster, localstripe,
  templates, data dir). A module's tests stay together on one worker, so its module
  fixtures (app servers, Chromium, seeded databases) are built once; and every browser
  test runs on one worker, one Chromium at a time, as in a serial run.

Settings
  Each test reads the environment afresh (orders_core.config.load_settings is cached
  per process), and monkeypatch.setenv / delenv mid-test take effect at once.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from orders_core import db as orders_db
from orders_core.config import load_settings
from tests.support import postgres as pg

try:
    from tests.support.localstripe import localstripe_url  # noqa: F401
except ModuleNotFoundError as exc:  # the module is still being written
    if exc.name != "tests.support.localstripe":
        raise


# --- parallel runs -----------------------------------------------------------------


@functools.cache
def _is_browser_module(path: Path) -> bool:
    try:
        return "mark.browser" in path.read_text(encoding="utf-8")
    except OSError:
        return False


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` runs the suite without the plugin
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadfile`, with every browser module counted as one file: a module's tests
    stay on one worker (its module fixtures are built once), and the browser tests all
    run on one worker, one Chromium at a time. (pytest-xdist's own `loadgroup` cannot
    do this under pytest 9: it renames `item._nodeid`, which pytest 9 no longer reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    # Modules in collection order (not largest first): the browser group, the longest,
    # starts at once (tests/e2e comes first), and the quick unit tests fill the end.
    config.option.loadscopereorder = False

    class ModulesWithTheBrowserTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "browser" if _is_browser_module(config.rootpath / module) else module

    return ModulesWithTheBrowserTestsTogether(config, log)


# --- environment -----------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ORDERS_DATA_DIR in a temp dir; default database there; offline payment gateway."""
    data_dir = tmp_path_factory.mktemp("orders-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORDERS_DATA_DIR", str(data_dir))
        mp.delenv("ORDERS_DATABASE_URL", raising=False)
        mp.setenv("ORDERS_PAYMENT_GATEWAY", "simulated")
        mp.delenv("STRIPE_API_KEY", raising=False)
        mp.delenv("STRIPE_API_BASE", raising=False)
        yield data_dir
    orders_db.forget_databases()


@pytest.fixture(autouse=True)
def settings_read_afresh() -> Iterator[None]:
    """Each test starts from the environment as it is, like a newly started process."""
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()  # after monkeypatch has put the environment back


@pytest.fixture
def monkeypatch(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """pytest's monkeypatch, whose setenv and delenv also drop the cached settings."""
    for name in ("setenv", "delenv"):
        change_environment = getattr(monkeypatch, name)

        def then_reread(*args, _change=change_environment, **kwargs):
            _change(*args, **kwargs)
            load_settings.cache_clear()

        setattr(monkeypatch, name, then_reread)
    return monkeypatch


# --- SQLite ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "orders.db"
    engine = orders_db.create_database_engine(f"sqlite:///{path}")
    try:
        orders_db.migrate(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()  # the last connection closing folds the WAL into the file
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _fresh_sqlite_url(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "orders.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_database_url(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    yield _fresh_sqlite_url(sqlite_template, tmp_path)
    orders_db.forget_databases()


# --- PostgreSQL ------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Base URL (database `postgres`) of the session's PostgreSQL 15 server."""
    with pg.running_postgres() as url:
        yield url


# Unique per session, so that two runs sharing ORDERS_TEST_POSTGRES_URL don't collide.
_SESSION_TAG = str(os.getpid())
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """Name of a migrated database that each test's database is cloned from."""
    name = f"orders_template_{_SESSION_TAG}"
    url = pg.create_database(postgres_server, name)
    engine = create_engine(url, poolclass=NullPool)
    try:
        orders_db.migrate(engine)
    finally:
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template idle
    yield name
    pg.drop_database(postgres_server, name)


def _fresh_postgres_database(server: str, template: str) -> tuple[str, str]:
    name = f"test_{_SESSION_TAG}_{next(_counter)}"
    return name, pg.create_database(server, name, template=template)


def _drop_postgres_database(server: str, name: str) -> None:
    orders_db.forget_databases()
    pg.drop_database(server, name)


@pytest.fixture
def postgres_database_url(postgres_server: str, postgres_template: str) -> Iterator[str]:
    name, url = _fresh_postgres_database(postgres_server, postgres_template)
    yield url
    _drop_postgres_database(postgres_server, name)


# --- both ------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, fully migrated, empty database for this test, on each backend."""
    if request.param == "sqlite":
        yield _fresh_sqlite_url(request.getfixturevalue("sqlite_template"), tmp_path)
        orders_db.forget_databases()
        return
    # Looked up lazily, so SQLite-only runs (-m "not postgres") never start a server.
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    name, url = _fresh_postgres_database(server, template)
    yield url
    _drop_postgres_database(server, name)


@pytest.fixture
def db(database_url: str) -> orders_db.Database:
    return orders_db.open_database(database_url)


@pytest.fixture
def sqlite_db(sqlite_database_url: str) -> orders_db.Database:
    return orders_db.open_database(sqlite_database_url)


@pytest.fixture
def postgres_db(postgres_database_url: str) -> orders_db.Database:
    return orders_db.open_database(postgres_database_url)
