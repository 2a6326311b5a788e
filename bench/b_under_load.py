"""#8 Under load (issue #13 §6): N signed-in people clicking the real app, with and without
a 250k bulk Fulfill running in the server's embedded worker, and that job's throughput
beside its throughput alone, in one run.

The server is the app as the README starts it (`streamlit run app.py`, through
tests/support/app_server.py: loopback, a free port) on a scratch copy of the bench's
cached database, with the embedded worker on (ORDERS_EMBEDDED_WORKER=1: its own child
process, orders_core/job_engine/embedded.py).

The people are Chromium pages driven by Playwright (one browser, one context each: its
own cookies, its own Streamlit session), signed in through the real /sign-in page as
the demo staff accounts in turn. Chromium rather than a hand-made websocket client:
it is what the issue measured, what users see (the click, Streamlit's rerun over its
websocket, the page drawn again), and it needs nothing of Streamlit's protocol beyond
reading one message; its cost (the browser's CPU on the same machine) is counted and
reported beside the server's. Each person repeats, with THINK_SECONDS between clicks:
a status tab, a search for an order number, Clear filters, a tab, a search for a whole
email, Clear, a tab, a search for a surname, Clear (the tabs in turn, the search terms
from real orders, each person from another point of the cycle).

An action is timed from the click until the rerun it started has finished
(Streamlit's `script_finished` message, read from the page's websocket) and the page
shows the new view (its URL, the tab checked, the list's caption or "No orders
match"). An action that takes longer than ACTION_TIMEOUT, a session that ended, an
exception box or a lost connection is an error.

Phases, in this order:
1. users alone: N people for `seconds`;
2. users + job: the same people while a bulk Fulfill of every paid order (about 250k at
   1M orders; enqueued from the bench as filters status=paid, as "Select all matching"
   does) runs in the embedded worker, from its enqueue until it finishes;
3. the browser is closed, the job's orders are put back to paid (untimed), and the same
   job runs again with nobody signed in: the job alone (run last, so any warming of
   caches favours the alone rate, never the ratio).

The job's throughput is its orders over the worker's time on it (the job's started_at
to finished_at, as the worker recorded them). The SQLite WAL file's size is sampled
every WAL_SAMPLE_SECONDS throughout; CPU seconds of the server, its worker process and
the browser (from /proc) per phase say where the two cores went."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.engine import make_url

from orders_core.db import Database
from orders_core.queries import OrderFilters
from orders_core.schema import job_items, orders
from orders_core.staff import Actor, Role
from orders_core.status import Status

from .common import WAL_SAMPLE_SECONDS, Figure, Stats, WalSampler, log, percentile

THINK_SECONDS = 0.5
ACTION_TIMEOUT = 15.0  # the "nothing over 15 s"
ACCOUNTS = ("ops", "support", "analyst", "admin")
TABS = ("all", "created", "paid", "fulfilled", "canceled", "returned")
ACTIONS = ("tab", "search_number", "search_email", "search_surname", "clear")
ACTION_TITLES = {
    "tab": "a status tab",
    "search_number": "a search for an order number",
    "search_email": "a search for a whole email",
    "search_surname": "a search for a surname",
    "clear": "Clear filters (back to the unfiltered list)",
}
CYCLE = (
    "tab",
    "search_number",
    "clear",
    "tab",
    "search_email",
    "clear",
    "tab",
    "search_surname",
    "clear",
)
# What the page shows: a run in progress, a finished list, or a failure.
PAGE_STATE = """() => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return "running";
  if (document.querySelector('[data-testid="stException"]')) return "exception";
  const text = document.body.innerText;
  if (text.includes("Your session has ended")) return "session ended";
  if (text.includes("Connection error") || text.includes("Is Streamlit still running"))
    return "connection lost";
  if (/Showing [0-9,]+–[0-9,]+ of/.test(text) || text.includes("No orders match")) return "ok";
  return "waiting";
}"""
REQUESTER = Actor(email="ops@ordersdesk.test", role=Role.OPS)
PASSWORD = "demo-password"


# -- what the people search for ---------------------------------------------------------------
@dataclasses.dataclass
class Terms:
    numbers: list[str]
    emails: list[str]
    surnames: list[str]

    @classmethod
    def sample(cls, db: Database, count: int = 40, seed: int = 13) -> Terms:
        with db.read() as conn:
            high = conn.execute(select(orders.c.id).order_by(orders.c.id.desc()).limit(1)).scalar_one()
            rng = random.Random(seed)
            ids = sorted({rng.randint(1, high) for _ in range(count * 3)})
            rows = conn.execute(
                select(orders.c.number, orders.c.customer_email, orders.c.customer_name).where(
                    orders.c.id.in_(ids)
                )
            ).all()
        rows = rows[:count] or [("ORD-000001", "customer@ordersdesk.test", "Customer")]
        surnames = [name.split()[-1] for _, _, name in rows if name and name.split()]
        return cls(
            numbers=[r[0] for r in rows],
            emails=[r[1] for r in rows if r[1]],
            surnames=[s for s in surnames if len(s) >= 3] or ["Customer"],
        )


# -- measuring the machine ----------------------------------------------------------------------
def _descendants() -> dict[int, str]:
    """Every process below this one: pid -> its command line."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                commands[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine, frontier = {}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in mine:
                mine[child] = commands.get(child, "")
                frontier.append(child)
    return mine


def _kind(command: str) -> str:
    if "child_main" in command:
        return "worker"
    if "streamlit" in command:
        return "server"
    if "chrom" in command or "playwright" in command or "node" in command:
        return "browser"
    return "other"


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) so far of the server, its worker process, the
    browser and this process: where the cores went."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"server": 0.0, "worker": 0.0, "browser": 0.0, "other": 0.0}
    for pid, command in _descendants().items():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        totals[_kind(command)] += (int(fields[11]) + int(fields[12])) / tick
    own = os.times()
    totals["bench"] = own.user + own.system
    return totals


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0.0) - before.get(k, 0.0), 2) for k in after}


# -- the job --------------------------------------------------------------------------------------
@dataclasses.dataclass
class JobRun:
    id: int
    total: int
    succeeded: int
    failed: int
    status: str
    enqueue_seconds: float
    worker_seconds: float  # started_at to finished_at, as the worker recorded them
    wall_start: float  # perf_counter at enqueue
    wall_end: float  # perf_counter when the bench saw it finished

    @property
    def rate(self) -> float:
        return self.total / self.worker_seconds if self.worker_seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "status": self.status,
            "enqueue_seconds": round(self.enqueue_seconds, 2),
            "worker_seconds": round(self.worker_seconds, 2),
            "orders_per_second": round(self.rate, 1),
        }


def start_job(db: Database) -> tuple[int, float, float]:
    from orders_core import jobs

    start = time.perf_counter()
    job = jobs.enqueue(db, REQUESTER, "fulfill", filters=OrderFilters(status=Status.PAID))
    return job.id, start, time.perf_counter() - start


def wait_job(db: Database, job_id: int, start: float, enqueue_seconds: float, timeout: float) -> JobRun:
    from orders_core import jobs

    deadline = time.monotonic() + timeout
    while True:
        job = jobs.read_job(db, job_id)
        if job.finished:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"job #{job_id} did not finish in {timeout:.0f} s ({job.status}, "
                f"{job.succeeded + job.failed:,} of {job.total:,} done, lease {job.lease_owner})"
            )
        time.sleep(0.2)
    end = time.perf_counter()
    worker = (job.finished_at - job.started_at).total_seconds() if job.started_at and job.finished_at else 0.0
    return JobRun(
        job.id, job.total, job.succeeded, job.failed, job.status, enqueue_seconds, worker, start, end
    )


def job_order_ids(db: Database, job_id: int) -> list[int]:
    with db.read() as conn:
        return list(conn.execute(select(job_items.c.order_id).where(job_items.c.job_id == job_id)).scalars())


# -- the people -------------------------------------------------------------------------------
@dataclasses.dataclass
class Sample:
    action: str
    start: float  # perf_counter
    seconds: float
    error: str = ""
    run_seconds: float | None = None  # click to the rerun's script_finished (the server's part)


class Person:
    """One signed-in Chromium page on the orders list, doing the cycle of actions."""

    def __init__(self, index: int, page, terms: Terms):
        self.index, self.page, self.terms = index, page, terms
        self.finished_runs = 0
        self.run_finished = asyncio.Event()
        self.samples: list[Sample] = []
        self.step = index * 2  # each person from another point of the cycle
        self.tab = index
        self.rng = random.Random(index)
        self._expect = lambda query: True
        self._ran_at = 0.0

    def watch(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        def on_frame(payload) -> None:
            if not isinstance(payload, bytes):
                return
            try:
                message = ForwardMsg.FromString(payload)
            except Exception:  # noqa: BLE001 - not a ForwardMsg: not ours to read
                return
            if (
                message.WhichOneof("type") == "script_finished"
                and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
            ):
                self.finished_runs += 1
                self.run_finished.set()

        self.page.on("websocket", lambda ws: ws.on("framereceived", on_frame))

    async def sign_in(self, base: str) -> None:
        page = self.page
        await page.goto(base + "/")
        await page.locator("#email").wait_for()
        await page.locator("#email").fill(f"{ACCOUNTS[self.index % len(ACCOUNTS)]}@ordersdesk.test")
        await page.locator("#password").fill(PASSWORD)
        async with page.expect_navigation():
            await page.locator("#sign-in").click()
        await self._view_shown(lambda q: True)

    async def _view_shown(self, url_ok) -> None:
        """Until the page shows a finished view whose URL query passes `url_ok`."""
        deadline = time.monotonic() + ACTION_TIMEOUT
        while True:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.page.url).query).items()}
            if url_ok(query):
                shown = await self.page.evaluate(PAGE_STATE)
                if shown == "ok":
                    return
                if shown not in ("running", "waiting"):
                    raise RuntimeError(shown)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no finished view in {ACTION_TIMEOUT:.0f} s")
            await asyncio.sleep(0.02)

    async def work(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            action = CYCLE[self.step % len(CYCLE)]
            start = time.perf_counter()
            runs = self.finished_runs
            try:
                await asyncio.wait_for(self._act_counted(action, runs), ACTION_TIMEOUT)
                self.samples.append(
                    Sample(action, start, time.perf_counter() - start, run_seconds=self._ran_at - start)
                )
            except Exception as error:  # noqa: BLE001 - an error is a result here
                self.samples.append(
                    Sample(
                        action, start, time.perf_counter() - start, f"{type(error).__name__}: {error}"[:200]
                    )
                )
                log(f"under load: person {self.index} {action}: {self.samples[-1].error}")
                if self.page.is_closed():
                    return
                with contextlib.suppress(Exception):  # start again from a fresh page load
                    await self.page.reload()
                    await self._view_shown(lambda q: True)
            self.step += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), THINK_SECONDS)

    async def _act_counted(self, action: str, runs: int) -> None:
        """The click, then the rerun it started (the first full run to finish after
        it), then the new view on the page."""
        await self._click(action)
        while self.finished_runs <= runs:
            self.run_finished.clear()
            await self.run_finished.wait()
        self._ran_at = time.perf_counter()
        await self._view_shown(self._expect)

    async def _click(self, action: str) -> None:
        page = self.page
        timeout = ACTION_TIMEOUT * 1000
        if action == "tab":
            self.tab = (self.tab + 1) % len(TABS)
            tab = TABS[self.tab]
            label = "All" if tab == "all" else tab.capitalize()
            await (
                page.locator(".st-key-orders_tab")
                .get_by_role("radio", name=re.compile(rf"^{label}"))
                .click(timeout=timeout)
            )
            expected = None if tab == "all" else tab
            self._expect = lambda q: q.get("status") == expected
        elif action == "clear":
            await page.locator(".st-key-orders_clear button").click(timeout=timeout)
            self._expect = lambda q: "q" not in q
        else:
            pool = {
                "search_number": self.terms.numbers,
                "search_email": self.terms.emails,
                "search_surname": self.terms.surnames,
            }[action]
            term = self.rng.choice(pool)
            await page.locator(".st-key-orders_filter_q input").fill(term, timeout=timeout)
            await page.locator(".st-key-orders_apply button").click(timeout=timeout)
            self._expect = lambda q: "q" in q


# -- the run ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Phase:
    start: float
    end: float
    cpu: dict[str, float]
    samples: list[Sample] = dataclasses.field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def as_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 1),
            "cpu_seconds": self.cpu,
            "actions": {a: summarize([s for s in self.samples if s.action == a]) for a in ACTIONS},
            "errors": [f"{s.action}: {s.error}" for s in self.samples if s.error][:20],
        }


def summarize(samples: list[Sample]) -> dict:
    ok = [s.seconds * 1000 for s in samples if not s.error]
    out: dict = {"count": len(samples), "errors": sum(1 for s in samples if s.error)}
    if ok:
        out.update(
            p50_ms=round(percentile(ok, 50), 1), p95_ms=round(percentile(ok, 95), 1), max_ms=round(max(ok), 1)
        )
    ran = [s.run_seconds * 1000 for s in samples if not s.error and s.run_seconds is not None]
    if ran:  # the click until the server's rerun finished: the rest is the browser drawing it
        out.update(run_p50_ms=round(percentile(ran, 50), 1), run_p95_ms=round(percentile(ran, 95), 1))
    return out


def _brief(phase: Phase) -> str:
    parts = []
    for action in ACTIONS:
        seen = summarize([s for s in phase.samples if s.action == action])
        if seen["count"]:
            parts.append(
                f"{action} p50 {seen.get('p50_ms', 0):,.0f} / p95 {seen.get('p95_ms', 0):,.0f} ms"
                + (f" ({seen['errors']} errors)" if seen["errors"] else "")
            )
    return ", ".join(parts)


def _ready(base: str, timeout: float = 90.0) -> int | None:
    """Until /readyz says ready (the embedded worker beats); its worker's pid."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base.replace("localhost", "127.0.0.1") + "/readyz", timeout=5) as r:
                body = json.loads(r.read())
                worker = body.get("checks", {}).get("embedded_worker", {})
                if worker.get("ok"):
                    return worker.get("pid")
                last = json.dumps(body)
        except (OSError, ValueError) as error:
            last = str(error)
        time.sleep(0.5)
    raise RuntimeError(f"the app's embedded worker never became ready: {last}")


async def _with_people(
    base: str, db: Database, terms: Terms, clients: int, seconds: float, job_timeout: float
):
    """Phases 1 and 2 (see the module's docstring): (users alone, users + job, the job)."""
    from playwright.async_api import async_playwright

    from tests.support.app_server import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            people = []
            for i in range(clients):
                context = await browser.new_context(viewport={"width": 1280, "height": 1000})
                page = await context.new_page()
                page.set_default_timeout(ACTION_TIMEOUT * 1000)
                person = Person(i, page, terms)
                person.watch()
                people.append(person)
            await asyncio.gather(*(p.sign_in(base) for p in people))
            log(f"under load: {clients} people signed in")

            async def clicking(until, *, every_action: bool = False) -> tuple[Phase, object]:
                before = cpu_seconds()
                marks = [len(p.samples) for p in people]
                stop = asyncio.Event()
                start = time.perf_counter()
                tasks = [asyncio.create_task(p.work(stop)) for p in people]
                try:
                    extra = await until()
                    # A short job (a small database) still sees every action once, so
                    # that every row is reported; at 1M the job outlasts a cycle.
                    deadline = time.monotonic() + ACTION_TIMEOUT * len(CYCLE)
                    while every_action and time.monotonic() < deadline:
                        seen = {s.action for p, m in zip(people, marks) for s in p.samples[m:]}
                        if seen >= set(ACTIONS):
                            break
                        await asyncio.sleep(0.1)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks)
                phase = Phase(start, time.perf_counter(), _delta(cpu_seconds(), before))
                phase.samples = [s for p, m in zip(people, marks) for s in p.samples[m:]]
                return phase, extra

            alone, _ = await clicking(lambda: asyncio.sleep(seconds))
            log(
                f"under load: users alone: {len(alone.samples)} actions in {alone.seconds:.0f} s: "
                + _brief(alone)
            )

            async def the_job():
                job_id, start, enqueue = await asyncio.to_thread(start_job, db)
                return await asyncio.to_thread(wait_job, db, job_id, start, enqueue, job_timeout)

            loaded, job = await clicking(the_job, every_action=True)
            log(
                f"under load: with the job: {len(loaded.samples)} actions in {loaded.seconds:.0f} s "
                f"({_brief(loaded)}); "
                f"job #{job.id}: {job.total:,} orders at {job.rate:,.0f}/s"
            )
            return alone, loaded, job
        finally:
            await browser.close()


def run(
    url: str, backend: str, *, orders_total: int, clients: int = 4, seconds: float = 60.0
) -> list[Figure]:
    from orders_core.db import open_database
    from tests.support.app_server import app_server

    from . import b_bulk
    from . import dataset as ds

    db = open_database(url)
    terms = Terms.sample(db)
    sqlite_path = Path(make_url(url).database) if backend == "sqlite" else None
    data_dir = Path(os.environ.get("ORDERS_DATA_DIR", "bench/work/data")) / "under-load"
    job_timeout = max(120.0, orders_total / 250)  # 250k orders: 1,000 s, a hung job's bound
    with (
        WalSampler(sqlite_path) as wal,
        app_server(url, data_dir, ORDERS_EMBEDDED_WORKER="1", ORDERS_SESSION_IDLE_MINUTES="720") as base,
    ):
        worker_pid = _ready(base)
        log(f"under load: the app at {base}, its worker process {worker_pid}")
        try:
            alone, loaded, with_users = asyncio.run(
                _with_people(base, db, terms, clients, seconds, job_timeout)
            )
        except Exception:
            with (  # what the server and its worker said
                contextlib.suppress(Exception),
                urllib.request.urlopen(base.replace("localhost", "127.0.0.1") + "/readyz") as r,
            ):
                log(f"under load: /readyz {r.read().decode()}")
            for server_log in data_dir.glob("streamlit-*.log"):
                log(f"under load: {server_log.name}:\n" + server_log.read_text(errors="replace")[-3000:])
            raise
        with contextlib.suppress(Exception):
            _ready(base, timeout=10)  # the worker still beats after the people left
        ids = job_order_ids(db, with_users.id)
        put = time.perf_counter()
        b_bulk.put_back_fulfilled(db, ids)
        if sqlite_path is not None:
            with contextlib.suppress(Exception):
                ds.checkpoint_sqlite(sqlite_path)
        log(
            f"under load: {len(ids):,} orders put back to paid in {time.perf_counter() - put:.0f} s (untimed)"
        )
        before = cpu_seconds()
        job_id, start, enqueue = start_job(db)
        by_itself = wait_job(db, job_id, start, enqueue, job_timeout)
        quiet = Phase(by_itself.wall_start, by_itself.wall_end, _delta(cpu_seconds(), before))
        log(f"under load: the job alone: {by_itself.total:,} orders at {by_itself.rate:,.0f}/s")
    return figures(
        backend,
        orders_total=orders_total,
        clients=clients,
        alone=alone,
        loaded=loaded,
        with_users=with_users,
        by_itself=by_itself,
        quiet=quiet,
        wal=wal if sqlite_path is not None else None,
    )


def figures(
    backend: str,
    *,
    orders_total: int,
    clients: int,
    alone: Phase,
    loaded: Phase,
    with_users: JobRun,
    by_itself: JobRun,
    quiet: Phase,
    wal: WalSampler | None,
) -> list[Figure]:
    at_scale = orders_total >= 1_000_000
    people = f"{clients} {'person' if clients == 1 else 'people'}"
    job_words = f"a bulk Fulfill of {with_users.total:,} orders"
    phases = {
        "users_alone": alone.as_dict(),
        "users_with_job": loaded.as_dict(),
        "job_alone": quiet.as_dict(),
    }
    out = []
    targets = {
        "tab": 1000.0,
        "clear": None,
        "search_number": 300.0,
        "search_email": 300.0,
        "search_surname": 300.0,
    }
    for action in ACTIONS:
        mine = [s for s in loaded.samples if s.action == action]
        # Those started while the job ran (all of them when a short job saw none).
        under = summarize([s for s in mine if s.start <= with_users.wall_end] or mine)
        calm = summarize([s for s in alone.samples if s.action == action])
        if "p95_ms" not in under:
            continue
        limit = targets[action]
        met = None
        if at_scale and limit is not None:
            met = under["p95_ms"] <= limit and under["errors"] == 0 and calm.get("errors", 0) == 0
        out.append(
            Figure(
                key=f"under_load_{action}.{backend}",
                title=f"Under load: {ACTION_TITLES[action]}, p95 of {people} clicking while {job_words} runs",
                backend=backend,
                value=Stats.of([under["p95_ms"]], "ms"),
                better="lower",
                baseline=Stats.of([calm["p95_ms"]], "ms") if "p95_ms" in calm else None,
                baseline_title="the same people, no job: p95",
                target="" if limit is None else f"p95 ≤ {limit:,.0f} ms, no errors",
                met=met,
                notes=(
                    f"with the job: p50 {under['p50_ms']:,.0f} ms, max {under['max_ms']:,.0f} ms, "
                    f"{under['count']} actions, {under['errors']} errors; no job: p50 "
                    f"{calm.get('p50_ms', 0):,.0f} ms, max {calm.get('max_ms', 0):,.0f} ms, "
                    f"{calm['count']} actions, {calm['errors']} errors; the click until the server's "
                    "rerun finished (script_finished), with the job: p50 "
                    f"{under.get('run_p50_ms', 0):,.0f} ms, "
                    f"p95 {under.get('run_p95_ms', 0):,.0f} ms (the rest is the browser drawing the page)"
                ),
                extra={
                    "with_job": under,
                    "no_job": calm,
                    "clients": clients,
                    "phase_seconds": {
                        "with_job": round(loaded.seconds, 1),
                        "no_job": round(alone.seconds, 1),
                    },
                    "cpu_seconds": {"with_job": loaded.cpu, "no_job": alone.cpu},
                    "load_average": [round(x, 1) for x in os.getloadavg()],
                },
            )
        )
    ratio = with_users.rate / by_itself.rate if by_itself.rate else 0.0
    out.append(
        Figure(
            key=f"under_load_job.{backend}",
            title=f"Under load: {job_words} in the embedded worker while {people} click",
            backend=backend,
            value=Stats.of([with_users.rate], "orders/s"),
            better="higher",
            baseline=Stats.of([by_itself.rate], "orders/s"),
            baseline_title="the same job alone (nobody signed in)",
            target="≥ 70 % of its rate alone",
            met=(ratio >= 0.7 and with_users.failed == by_itself.failed) if at_scale else None,
            notes=(
                f"{ratio * 100:.0f} % of its rate alone; worker time {with_users.worker_seconds:.1f} s "
                f"with the people, {by_itself.worker_seconds:.1f} s alone (enqueue "
                f"{with_users.enqueue_seconds:.1f} / {by_itself.enqueue_seconds:.1f} s); CPU seconds "
                + "; ".join(
                    f"{name}: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in phase["cpu_seconds"].items() if v >= 0.05)
                    for name, phase in (
                        ("with the people", phases["users_with_job"]),
                        ("alone", phases["job_alone"]),
                    )
                )
            ),
            extra={
                "ratio": round(ratio, 3),
                "with_users": with_users.as_dict(),
                "alone": by_itself.as_dict(),
                "phases": phases,
                "clients": clients,
                "think_seconds": THINK_SECONDS,
            },
        )
    )
    if wal is not None:
        peaks = {
            "users_alone": wal.peak_mb(alone.start, alone.end),
            "users_with_job": wal.peak_mb(loaded.start, loaded.end),
            "job_alone": wal.peak_mb(quiet.start, quiet.end),
        }
        if peaks["users_with_job"] is not None:
            out.append(
                Figure(
                    key=f"under_load_wal.{backend}",
                    title=f"Under load: SQLite WAL file's peak while {job_words} runs and {people} click",
                    backend=backend,
                    value=Stats.of([peaks["users_with_job"]], "MB"),
                    better="lower",
                    baseline=Stats.of([peaks["job_alone"]], "MB") if peaks["job_alone"] is not None else None,
                    baseline_title="the same job alone",
                    notes=(
                        f"sampled every {WAL_SAMPLE_SECONDS * 1000:.0f} ms; peak with the people and no job "
                        f"{peaks['users_alone'] or 0:,.1f} MB"
                    ),
                    extra={"peak_mb": {k: None if v is None else round(v, 1) for k, v in peaks.items()}},
                )
            )
    return out
