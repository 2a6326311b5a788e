"""The app server's embedded worker runs in a process of its own, started, watched and
restarted by the server process (orders_core/job_engine/embedded.py): a separate pid,
restarted when killed, gone when the server stops or dies, and jobs run through it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from orders_core import db as orders_db
from orders_core import demo, job_engine, jobs
from orders_core.queries import OrderFilters
from orders_core.schema import job_items
from orders_core.staff import SYSTEM
from tests.integration.test_jobs import OPS, _shopper, new_orders
from tests.support.app_server import app_server

sqlite_only = pytest.mark.parametrize("database_url", [pytest.param("sqlite", id="sqlite")], indirect=True)


@pytest.fixture
def embedded(database_url, monkeypatch):
    """This process as the server: its embedded worker on `database_url`."""
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "1")
    job_engine.ensure_embedded_worker(database_url)
    try:
        yield database_url
    finally:
        job_engine.stop_embedded_worker()


def wait_for(predicate, seconds: float = 30.0, what: str = "it"):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen in {seconds:.0f} s"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().split(") ", 1)[1].split()[1])


@sqlite_only
def test_the_embedded_worker_is_a_process_of_its_own_that_runs_jobs_end_to_end(db, catalog, embedded):
    pid = wait_for(lambda: job_engine.embedded_worker_pid(embedded), what="the worker process start")
    assert pid != os.getpid() and parent_of(pid) == os.getpid()
    numbers = new_orders(db, _shopper(catalog), 3)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    done = wait_for(
        lambda: (j := jobs.get_job(db, job.id, actor=SYSTEM)).finished and j, what="the job finishing"
    )
    assert (done.status, done.succeeded) == ("completed", 3)
    with db.read() as conn:
        workers = set(conn.execute(select(job_items.c.worker).where(job_items.c.job_id == job.id)).scalars())
    [worker] = workers  # one worker did them all
    assert worker.startswith(f"embedded-{socket.gethostname()}:{pid}/")  # in the child's process
    age = job_engine.embedded_worker_heartbeat_age(embedded)
    assert age is not None and age < 10


@sqlite_only
def test_a_killed_worker_process_is_restarted_and_takes_jobs_again(db, catalog, embedded):
    first = wait_for(lambda: job_engine.embedded_worker_pid(embedded), what="the worker process start")
    os.kill(first, signal.SIGKILL)
    second = wait_for(
        lambda: (p := job_engine.embedded_worker_pid(embedded)) not in (None, first) and p,
        what="the restart",
    )
    assert not alive(first) and alive(second)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=new_orders(db, _shopper(catalog), 2))
    wait_for(lambda: jobs.get_job(db, job.id, actor=SYSTEM).finished, what="the job finishing")
    assert jobs.get_job(db, job.id, actor=SYSTEM).status == "completed"


@sqlite_only
def test_stopping_the_embedded_worker_ends_its_process(db, embedded):
    pid = wait_for(lambda: job_engine.embedded_worker_pid(embedded), what="the worker process start")
    job_engine.stop_embedded_worker()
    assert not alive(pid)
    assert job_engine.embedded_worker_pid(embedded) is None
    assert job_engine.embedded_worker_heartbeat_age(embedded) is None


# -- the real app server -----------------------------------------------------------------------
@pytest.fixture
def seeded_file(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=10, random_seed=3)
    orders_db.forget_databases()
    return url


def readiness(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/readyz", timeout=10) as answer:
        return json.loads(answer.read())


@pytest.mark.parametrize("ending", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_the_app_servers_worker_process_ends_with_the_server(seeded_file, tmp_path, ending):
    with app_server(seeded_file, tmp_path / "data", ORDERS_EMBEDDED_WORKER="1") as base:
        check = wait_for(lambda: readiness(base)["checks"]["embedded_worker"], what="/readyz")
        assert check["ok"]
        worker = check["pid"]
        server = parent_of(worker)
        assert alive(worker) and server != os.getpid()
        job = jobs.enqueue(orders_db.open_database(seeded_file), SYSTEM, "export", filters=OrderFilters())
        db = orders_db.open_database(seeded_file)
        done = wait_for(
            lambda: (j := jobs.get_job(db, job.id, actor=SYSTEM)).finished and j, what="the export job"
        )
        assert (done.status, done.export_rows) == ("completed", 10)
        os.kill(server, ending)  # the server alone, not its process group
        wait_for(lambda: not alive(server), what="the server ending")
        wait_for(lambda: not alive(worker), seconds=20, what="the worker process ending with the server")
    orders_db.forget_databases()
