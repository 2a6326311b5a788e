"""The embedded worker: one background worker thread per app process and database
(ORDERS_EMBEDDED_WORKER=0 turns it off), so a single app server runs its own jobs."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import time

from ..config import load_settings
from ..db import open_database
from .worker import Worker, default_worker_name

log = logging.getLogger("orders_core.worker")


@dataclasses.dataclass
class _Embedded:
    thread: threading.Thread
    stop: threading.Event
    worker: Worker | None = None


_embedded: dict[tuple[int, str | None], _Embedded] = {}
_embedded_lock = threading.Lock()


def ensure_embedded_worker(database_url: str | None = None) -> None:
    """Start this process's background worker thread unless it runs already (cheap
    then; safe from any thread). ORDERS_EMBEDDED_WORKER=0 turns it off."""
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
            target=_embedded_main, args=(database_url, stop), daemon=True, name="orders-embedded-worker"
        )
        _embedded[key] = _Embedded(thread, stop)
        thread.start()


def stop_embedded_worker(timeout: float = 10.0) -> None:
    """Stop this process's embedded workers (tests; interpreter exit)."""
    with _embedded_lock:
        running = [e for (pid, _), e in _embedded.items() if pid == os.getpid()]
        _embedded.clear()
    for entry in running:
        entry.stop.set()
    for entry in running:
        entry.thread.join(timeout)


def embedded_worker_heartbeat_age(database_url: str | None = None) -> float | None:
    """Seconds since this process's embedded worker last looked for work (a chunk
    counts), or None when it does not run here."""
    running = _embedded.get((os.getpid(), database_url))
    if running is None or not running.thread.is_alive() or running.worker is None:
        return None
    return time.monotonic() - running.worker.last_beat


def _embedded_main(database_url: str | None, stop: threading.Event) -> None:
    entry = _embedded.get((os.getpid(), database_url))
    while not stop.is_set():
        try:
            db = open_database(database_url)
            worker = Worker(db, name=f"embedded-{default_worker_name()}")
            if entry is not None:
                entry.worker = worker
            worker.run_forever(stop)
        except Exception:  # noqa: BLE001 - keep the app's worker alive
            log.exception("embedded worker: unexpected failure; restarting")
            stop.wait(5.0)


atexit.register(stop_embedded_worker)
