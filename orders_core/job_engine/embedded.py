"""The embedded worker: one worker *process* per app server process and database
(ORDERS_EMBEDDED_WORKER=0 turns it off), so a single app server runs its own jobs
without jobs and people sharing one interpreter (a bulk job ran at a third of its
speed as a thread inside a busy Streamlit server).

The server (app.py's lifespan, or the first page run) calls `ensure_embedded_worker`,
which starts a supervisor thread ("orders-embedded-worker") that

- starts a child process (`child_main` below: a Worker's run_forever);
- reads its heartbeat: the child writes "beat <seconds since its worker last looked
  for work>" on its stdout every HEARTBEAT_SECONDS (/readyz reports the age);
- tells it "wake" on its stdin when a job is queued in this process, so the job
  starts at once rather than at the child's next poll;
- restarts it when it exits or is killed (after RESTART_SECONDS, doubling while it
  keeps failing fast).

The child stops when its stdin ends: when the server stops it (`stop_embedded_worker`:
it finishes its chunk and releases its leases), and also when the server dies in any
way, SIGKILL included (the pipe closes with the server), so it never outlives it.
SIGTERM and SIGINT stop it the same way.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from .. import jobs as jobs_module
from ..config import PROJECT_ROOT, load_settings

log = logging.getLogger("orders_core.worker")

HEARTBEAT_SECONDS = 1.0
RESTART_SECONDS = 0.5
MAX_RESTART_SECONDS = 10.0
STOP_SECONDS = 10.0
CHILD_COMMAND = (
    "import sys; from orders_core.job_engine.embedded import child_main; sys.exit(child_main(sys.argv[1:]))"
)


@dataclasses.dataclass
class _Embedded:
    thread: threading.Thread  # the supervisor
    stop: threading.Event
    child: subprocess.Popen[bytes] | None = None
    beat_at: float | None = None  # this process's monotonic clock at the child's last beat
    beat_age: float = 0.0  # the age the child reported then
    starts: int = 0


_embedded: dict[tuple[int, str | None], _Embedded] = {}
_embedded_lock = threading.Lock()


def ensure_embedded_worker(database_url: str | None = None) -> None:
    """Start this process's worker process (and its supervisor) unless it runs already
    (cheap then; safe from any thread). ORDERS_EMBEDDED_WORKER=0 turns it off."""
    key = (os.getpid(), database_url)
    running = _embedded.get(key)
    if running is not None and running.thread.is_alive():
        return
    with _embedded_lock:
        running = _embedded.get(key)
        if running is not None and running.thread.is_alive():
            return
        if not load_settings().embedded_worker:
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=_supervise, args=(database_url, stop), daemon=True, name="orders-embedded-worker"
        )
        _embedded[key] = _Embedded(thread, stop)
        thread.start()


def stop_embedded_worker(timeout: float = STOP_SECONDS) -> None:
    """Stop this process's embedded workers and wait for their processes (the server's
    shutdown; tests; interpreter exit)."""
    with _embedded_lock:
        running = [e for (pid, _), e in _embedded.items() if pid == os.getpid()]
        for key in [k for k in _embedded if k[0] == os.getpid()]:
            del _embedded[key]
    for entry in running:
        entry.stop.set()
    for entry in running:
        entry.thread.join(timeout + 5)


def embedded_worker_heartbeat_age(database_url: str | None = None) -> float | None:
    """Seconds since this process's embedded worker last looked for work (as its
    process last reported it), or None when it does not run."""
    entry = _embedded.get((os.getpid(), database_url))
    if entry is None or not entry.thread.is_alive() or entry.beat_at is None:
        return None
    child = entry.child
    if child is None or child.poll() is not None:
        return None
    return time.monotonic() - entry.beat_at + entry.beat_age


def embedded_worker_pid(database_url: str | None = None) -> int | None:
    """The process id of this process's embedded worker, None when none runs."""
    entry = _embedded.get((os.getpid(), database_url))
    child = entry.child if entry is not None else None
    return child.pid if child is not None and child.poll() is None else None


# -- the server's side: the supervisor --------------------------------------------------------
def _supervise(database_url: str | None, stop: threading.Event) -> None:
    entry = _embedded.get((os.getpid(), database_url))
    if entry is None:
        return
    delay = RESTART_SECONDS
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                child = _start_child(database_url)
            except OSError:
                log.exception("embedded worker: cannot start its process")
                stop.wait(delay)
                delay = min(MAX_RESTART_SECONDS, delay * 2)
                continue
            # Its start counts as its first beat (it beats once its imports are done).
            entry.child, entry.beat_at, entry.beat_age = child, time.monotonic(), 0.0
            entry.starts += 1
            threading.Thread(
                target=_read_beats, args=(child, entry), daemon=True, name="orders-embedded-beats"
            ).start()
            log.info("embedded worker: process %d started", child.pid)
            while child.poll() is None and not stop.is_set():
                if jobs_module.job_queued.wait(0.2):  # a job queued here: start it now
                    jobs_module.job_queued.clear()
                    _tell(child, b"wake\n")
            if stop.is_set():
                break
            log.warning("embedded worker: process %d ended (%s); restarting", child.pid, child.returncode)
            _close_pipes(child)
            delay = (
                RESTART_SECONDS if time.monotonic() - started > 30 else min(MAX_RESTART_SECONDS, delay * 2)
            )
            stop.wait(delay)
    finally:
        if entry.child is not None:
            _stop_child(entry.child)


def _start_child(database_url: str | None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_COMMAND, database_url or ""],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        close_fds=True,
    )


def _read_beats(child: subprocess.Popen[bytes], entry: _Embedded) -> None:
    assert child.stdout is not None
    with contextlib.suppress(OSError, ValueError):
        for line in child.stdout:
            if line.startswith(b"beat "):
                with contextlib.suppress(ValueError):
                    entry.beat_age = float(line[5:])
                    entry.beat_at = time.monotonic()


def _tell(child: subprocess.Popen[bytes], message: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):
        assert child.stdin is not None
        child.stdin.write(message)
        child.stdin.flush()


def _stop_child(child: subprocess.Popen[bytes], timeout: float = STOP_SECONDS) -> None:
    """End of stdin: the child finishes its chunk, releases its leases and exits;
    SIGTERM, then SIGKILL, if it takes longer than `timeout`."""
    with contextlib.suppress(OSError, ValueError):
        assert child.stdin is not None
        child.stdin.close()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    _close_pipes(child)


def _close_pipes(child: subprocess.Popen[bytes]) -> None:
    for stream in (child.stdin, child.stdout):
        with contextlib.suppress(OSError, ValueError):
            if stream is not None:
                stream.close()


def _stop_all_at_exit() -> None:
    stop_embedded_worker()


atexit.register(_stop_all_at_exit)


# -- the child's side -------------------------------------------------------------------------
def child_main(argv: list[str]) -> int:
    """Run a worker until stdin ends (or SIGTERM / SIGINT), beating on stdout."""
    from ..db import open_database
    from .worker import Worker, default_worker_name

    beats = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints stay out of the beats
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("orders_core").setLevel(logging.INFO)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    url = argv[0] if argv and argv[0] else None
    worker = Worker(open_database(url), name=f"embedded-{default_worker_name()}")

    def listen() -> None:  # the server's messages; their end is the server's end
        for line in sys.stdin.buffer:
            if line.strip() == b"wake":
                jobs_module.job_queued.set()
        stop.set()
        jobs_module.job_queued.set()

    def beat() -> None:
        while not stop.is_set():
            try:
                beats.write(b"beat %.3f\n" % max(0.0, time.monotonic() - worker.last_beat))
                beats.flush()
            except (OSError, ValueError):
                stop.set()
                return
            stop.wait(HEARTBEAT_SECONDS)

    threading.Thread(target=listen, daemon=True, name="orders-embedded-parent").start()
    threading.Thread(target=beat, daemon=True, name="orders-embedded-beat").start()
    while not stop.is_set():
        try:
            worker.run_forever(stop)
        except Exception:  # noqa: BLE001 - keep the server's worker alive
            log.exception("embedded worker: unexpected failure; restarting")
            stop.wait(5.0)
            worker = Worker(open_database(url), name=f"embedded-{default_worker_name()}")
    return 0
