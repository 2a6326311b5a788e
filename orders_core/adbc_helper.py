"""The helper process that reads SQLite through ADBC, for analytics and the export.

The ADBC driver carries its own copy of SQLite. Two SQLite libraries must never open
the same database file in one process: POSIX locks belong to the process, so when
one library closes the file it silently drops the other's locks, and its "last
connection" clean-up deletes the -wal and -shm files under the other's open
connections (writes then go to a deleted WAL and are lost; tried: later readers saw
stale data). So every ADBC read runs in `python -m orders_core.adbc_helper`, and the
app's own process only ever opens the file through sqlite3.

    read_arrow(path, sql, params)   # analytics: the rows as an Arrow table (or range by range)
    run_export(job)                 # the CSV export: export_engine.run_job, there

One helper is kept for the next request (starting Python, pyarrow and the driver
costs about half a second); a request that finds it busy gets a helper of its own,
for that request only. A helper that stopped is replaced once; a kept helper exits
by itself after IDLE_SECONDS without work and holds no database file open between
requests.

Protocol: one JSON request a line on stdin ({"kind": "query" | "export", ...}); the
answer is one line "OK <json>" or "ERR <json message>", and after an OK to a query
an Arrow IPC stream of the rows. The helper's own stdout is moved to stderr, so
nothing printed by a library can get into the answer.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable

import pyarrow as pa
import pyarrow.ipc

from . import export_engine
from .config import PROJECT_ROOT

IDLE_SECONDS = 120.0
log = logging.getLogger("orders_core.export")


class HelperUnavailable(Exception):
    """The helper could not be started, stopped while working, or the read failed."""


def read_arrow(path: str, sql: str, params: list, ranged: dict | None = None) -> pa.Table:
    """The rows of `sql` over the SQLite file `path`, opened read-only. With `ranged`,
    {"slots", "low", "high", "size"} (orders_core/id_ranges.py): `sql` once per range
    of ids, low < id <= high in ranges of `size`, each its own short read transaction,
    the rows of all in range order."""
    request = {"kind": "query", "path": os.path.abspath(path), "sql": sql, "params": params}
    if ranged is not None:
        request["ranged"] = ranged
    return _Helpers.ask(request, with_rows=True)[1]


def run_export(job: dict, progress: Callable[[int], None] | None = None) -> dict:
    """export_engine.run_job(job) in the helper: its report, {"rows", "peak_rss_mb"}
    or {"error"}. `progress(rows)` is called here as the helper reports rows written."""
    try:
        return _Helpers.ask({"kind": "export", "job": job}, with_rows=False, progress=progress)[0]
    except HelperUnavailable as problem:
        return {"error": str(problem)}


# -- this process's side ------------------------------------------------------------------------
class _Helpers:
    _lock = threading.Lock()
    _kept: subprocess.Popen | None = None

    @classmethod
    def ask(
        cls, request: dict, *, with_rows: bool, progress: Callable[[int], None] | None = None
    ) -> tuple[dict, pa.Table | None]:
        line = (json.dumps(request) + "\n").encode()
        if not cls._lock.acquire(blocking=False):  # busy: a helper for this request only
            helper = cls._start()
            try:
                return cls._exchange(helper, line, with_rows, progress) or cls._gone()
            finally:
                cls._stop(helper)
        try:
            for _attempt in (1, 2):  # once more if the kept helper had just left
                if cls._kept is None or cls._kept.poll() is not None:
                    cls._kept = cls._start()
                try:
                    answer = cls._exchange(cls._kept, line, with_rows, progress)
                except HelperUnavailable:  # it answered: the read failed, the helper is fine
                    raise
                except BaseException:  # interrupted: the helper's state is unknown
                    cls._stop(cls._kept)
                    cls._kept = None
                    raise
                if answer is not None:
                    return answer
                cls._stop(cls._kept)
                cls._kept = None
            return cls._gone()
        finally:
            cls._lock.release()

    @staticmethod
    def _gone():
        raise HelperUnavailable("the ADBC helper process stopped")

    @staticmethod
    def _start() -> subprocess.Popen:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "orders_core.adbc_helper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                cwd=str(PROJECT_ROOT),
                close_fds=True,
            )
        except OSError as error:
            raise HelperUnavailable(f"cannot start the ADBC helper: {error}") from error

    @staticmethod
    def _exchange(
        helper: subprocess.Popen, line: bytes, with_rows: bool, progress: Callable[[int], None] | None = None
    ) -> tuple[dict, pa.Table | None] | None:
        """The helper's answer; None if it is gone. "PROGRESS n" lines before it go to
        `progress`."""
        try:
            helper.stdin.write(line)
            helper.stdin.flush()
            status = helper.stdout.readline()
            while status.startswith(b"PROGRESS "):
                if progress is not None:
                    try:
                        progress(int(status[9:]))
                    except Exception:  # noqa: BLE001 - a report, never the export's failure
                        log.warning("the export's progress could not be recorded", exc_info=True)
                status = helper.stdout.readline()
            if status.startswith(b"ERR "):
                raise HelperUnavailable(f"the ADBC read failed: {json.loads(status[4:])}")
            if not status.startswith(b"OK "):
                return None
            report = json.loads(status[3:])
            return report, pa.ipc.open_stream(helper.stdout).read_all() if with_rows else None
        except (OSError, pa.ArrowInvalid):
            return None

    @staticmethod
    def _stop(helper: subprocess.Popen) -> None:
        if helper.poll() is None:
            helper.kill()
        helper.wait()
        for stream in (helper.stdin, helper.stdout):
            try:
                stream.close()
            except OSError:
                pass

    @classmethod
    def close(cls) -> None:
        """Let the kept helper go (at exit): it leaves when its stdin ends."""
        with cls._lock:
            helper, cls._kept = cls._kept, None
        if helper is None:
            return
        try:
            helper.stdin.close()
            helper.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        cls._stop(helper)


atexit.register(_Helpers.close)


def kept_helper() -> subprocess.Popen | None:
    """The helper kept for the next request, if any (for tests and diagnostics)."""
    return _Helpers._kept


def stop_kept_helper() -> None:
    _Helpers.close()


# -- the helper's side ------------------------------------------------------------------------------
def _query(request: dict, out) -> None:
    # Imported in the helper only: the app's process never loads the driver's SQLite.
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    uri = "file:" + urllib.parse.quote(request["path"]) + "?mode=ro"
    ranged = request.get("ranged")
    with adbc_sqlite.connect(uri) as conn, conn.cursor() as cursor:
        if ranged is None:
            cursor.execute(request["sql"], parameters=request["params"] or None)
            table = cursor.fetch_arrow_table()
        else:
            tables = []
            for lo, hi in export_engine.ranges(int(ranged["low"]), int(ranged["high"]), int(ranged["size"])):
                params = export_engine.bind_range(request["params"], ranged["slots"], lo, hi)
                cursor.execute(request["sql"], parameters=params)
                tables.append(cursor.fetch_arrow_table())
                conn.rollback()  # this range's read ends: nothing holds the WAL between ranges
            # SQLite has no column types: a range whose column is all NULL reads as null.
            table = pa.concat_tables(tables, promote_options="permissive")
    out.write(b"OK {}\n")
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table)


def _export(request: dict, out) -> None:
    def progress(rows: int) -> None:  # from the export's joining thread, before the answer
        out.write(b"PROGRESS %d\n" % rows)
        out.flush()

    out.write(b"OK " + json.dumps(export_engine.run_job(request["job"], progress)).encode() + b"\n")


def main() -> int:
    """Answer requests until stdin ends or IDLE_SECONDS pass without one."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints stay out of the answers
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], IDLE_SECONDS)
        if not ready:
            return 0
        line = sys.stdin.buffer.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            (_query if request["kind"] == "query" else _export)(request, out)
        except Exception as error:  # noqa: BLE001 - reported to the parent
            out.write(b"ERR " + json.dumps(f"{type(error).__name__}: {error}").encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
