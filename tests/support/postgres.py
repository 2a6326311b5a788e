"""A throwaway PostgreSQL 15 server for the test session.

`running_postgres()` starts a private cluster (initdb + pg_ctl from
/usr/lib/postgresql/15/bin) in a temporary directory, listening only on
127.0.0.1 on a free port, with durability switched off for speed, and yields a
SQLAlchemy base URL such as ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``.
On exit the server is stopped (``pg_ctl stop -m immediate``) and the directory deleted.

PostgreSQL refuses to run as root. When the tests run as root (CI does), initdb and
pg_ctl run as an unprivileged user instead: the ``postgres`` system user if it exists,
otherwise a system user ``orders-test`` that is created on first use.

If ORDERS_TEST_POSTGRES_URL is set, that server is used instead and nothing is started.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

PG_BIN = Path(os.environ.get("ORDERS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
EXTERNAL_URL_ENV = "ORDERS_TEST_POSTGRES_URL"
FALLBACK_USER = "orders-test"

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "max_wal_size": "1GB",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing, or the server would not start."""


def external_url() -> str | None:
    url = os.environ.get(EXTERNAL_URL_ENV, "").strip()
    return normalize_url(url) if url else None


def normalize_url(url: str) -> str:
    """Make sure the URL names the psycopg (3) driver that requirements.txt installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def url_for_database(base_url: str, name: str) -> str:
    """`base_url` pointed at database `name` on the same server."""
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def _admin_engine(base_url: str):
    return create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return f'"{name}"'


def create_database(base_url: str, name: str, *, template: str | None = None) -> str:
    """CREATE DATABASE `name` (optionally from `template`); returns its URL."""
    engine = _admin_engine(base_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
            sql = f"CREATE DATABASE {_quote(name)}"
            if template:
                sql += f" TEMPLATE {_quote(template)}"
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()
    return url_for_database(base_url, name)


def drop_database(base_url: str, name: str) -> None:
    """Terminate every connection to `name`, then drop it (no error if it is gone)."""
    engine = _admin_engine(base_url)
    try:
        with engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
    finally:
        engine.dispose()


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Yield the base URL of a PostgreSQL server that lives as long as the block."""
    url = external_url()
    if url:
        yield url
        return
    with _stop_on_sigterm(), _throwaway_cluster() as url:
        yield url


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (timeout(1), CI) into KeyboardInterrupt, so the server is still
    stopped and its directory deleted instead of being left running."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --- the throwaway cluster -------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_user() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_USER,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 9):  # 9: the user appeared meanwhile
        raise PostgresUnavailable(
            f"could not create the system user {FALLBACK_USER}: {result.stderr.strip()}"
        )
    return pwd.getpwnam(FALLBACK_USER)


def _traversable_by_others(path: Path) -> bool:
    """True if every directory from / down to `path` lets other users pass through."""
    path = path.resolve()
    for p in [path, *path.parents]:
        try:
            if not os.stat(p).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _base_temp_dir(user: pwd.struct_passwd | None) -> str | None:
    if user is None:
        return None
    default = Path(tempfile.gettempdir())
    if _traversable_by_others(default):
        return str(default)
    return "/tmp"


class _Runner:
    def __init__(self, user: pwd.struct_passwd | None, cwd: Path):
        self.user = user
        self.cwd = cwd
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        env.pop("LANG", None)
        if user is not None:
            env.update(HOME=str(cwd), USER=user.pw_name, LOGNAME=user.pw_name)
        self.env = env

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.user is not None:
            kwargs = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return subprocess.run(
            list(args),
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[str]:
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not initdb.exists() or not pg_ctl.exists():
        raise PostgresUnavailable(
            f"PostgreSQL 15 server binaries not found in {PG_BIN}. Install them "
            "(`apt-get install postgresql`; `bash scripts/test.sh` does this), or set "
            f"{EXTERNAL_URL_ENV} to a server of your own, or deselect with -m 'not postgres'."
        )
    user = _service_user()
    root = Path(tempfile.mkdtemp(prefix="orders-pg-", dir=_base_temp_dir(user)))
    data, log = root / "data", root / "server.log"
    runner = _Runner(user, root)
    started = False
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        result = runner.run(
            str(initdb),
            "-D",
            str(data),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{result.stdout}\n{result.stderr}")

        last_error = ""
        for _attempt in range(3):
            port = _free_port()
            settings = dict(SERVER_SETTINGS, port=str(port), unix_socket_directories=f"'{root}'")
            # postgresql.auto.conf is read last, so these win over postgresql.conf.
            conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
            (data / "postgresql.auto.conf").write_text(conf)
            if user is not None:
                os.chown(data / "postgresql.auto.conf", user.pw_uid, user.pw_gid)
            result = runner.run(
                str(pg_ctl), "-D", str(data), "-l", str(log), "-w", "-t", "30", "start", timeout=60
            )
            if result.returncode == 0:
                started = True
                break
            last_error = f"{result.stdout}\n{result.stderr}\n{_tail(log)}"
            runner.run(str(pg_ctl), "-D", str(data), "stop", "-m", "immediate", "-w")
        if not started:
            raise PostgresUnavailable(f"PostgreSQL would not start:\n{last_error}")

        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        _wait_until_accepting(url, log)
        yield url
    finally:
        if started:
            runner.run(str(pg_ctl), "-D", str(data), "stop", "-m", "immediate", "-w")
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_accepting(url: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    engine = create_engine(url, poolclass=NullPool)
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(
                        f"PostgreSQL did not accept connections: {exc}\n{_tail(log)}"
                    ) from exc
                time.sleep(0.1)
    finally:
        engine.dispose()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
