"""#3 Bulk Fulfill and #4 Bulk Cancel with refunds, through the job engine
(orders_core.jobs.enqueue + orders_core.worker.run_job_here), on a scratch copy of
the benchmark database.

Which orders: the database's own paid orders (a quarter of all), by id.
- Fulfill: the first F paid orders (F = 100,000 at 1M). Between repeats they are put
  back to paid set-based (status, fulfilled_at, updated_at, and their fulfil events
  deleted), untimed, so every repeat moves the same orders from the same state.
- ORM baseline: the next B paid orders (B = 2,000 at 1M: at ~600/s the rate is clear
  long before 100,000), put back the same way.
- Cancel: C paid orders per repeat (C = 10,000 at 1M) from the other end, fresh ones
  each repeat (refunds are not undone). Baseline: lifecycle.cancel_order one order
  at a time (the single-order service), on further fresh orders.
- Rate limiter: a bulk Cancel with ORDERS_GATEWAY_RPS set, counting the requests that
  reach the gateway and when.

The timed span of a job is enqueue (which freezes the selection) plus the worker
running it to the end; the figure's `extra` also has the worker's part alone."""
from __future__ import annotations

import dataclasses
import inspect
import statistics
import threading
import time

from sqlalchemy import delete, func, select, update

from orders_core.config import load_settings
from orders_core.db import Database
from orders_core.payments import Gateways
from orders_core.schema import order_events, orders, refunds
from orders_core.staff import Actor, Role

from . import baselines
from .common import Figure, Stats, log, timer

OPS = Actor(email="ops@ordersdesk.test", role=Role.OPS)
SUPPORT = Actor(email="support@ordersdesk.test", role=Role.SUPPORT)


@dataclasses.dataclass
class Sizes:
    fulfill: int
    orm: int
    cancel: int
    cancel_baseline: int
    rate_orders: int

    @classmethod
    def for_orders(cls, orders: int) -> "Sizes":
        fulfill = max(20, min(100_000, orders // 10))
        cancel = max(10, min(10_000, orders // 100))
        return cls(fulfill=fulfill, orm=max(10, min(2_000, fulfill // 2)), cancel=cancel,
                   cancel_baseline=max(5, min(500, cancel // 2)),
                   rate_orders=max(10, min(1_000, cancel // 2)))


def paid_orders(db: Database) -> list[tuple[int, str]]:
    with db.read() as conn:
        return [tuple(r) for r in conn.execute(select(orders.c.id, orders.c.number).where(
            orders.c.status == "paid").order_by(orders.c.id))]


def _chunks(items, size=900):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def put_back_fulfilled(db: Database, ids: list[int]) -> None:
    """Untimed: fulfilled orders of `ids` become paid again, as the seed left them."""
    with db.write() as conn:
        for chunk in _chunks(ids):
            conn.execute(update(orders).where(orders.c.id.in_(chunk),
                                              orders.c.status == "fulfilled")
                         .values(status="paid", fulfilled_at=None, updated_at=orders.c.paid_at))
            conn.execute(delete(order_events).where(order_events.c.order_id.in_(chunk),
                                                    order_events.c.action == "fulfill"))


def count_status(db: Database, ids: list[int], status: str) -> int:
    with db.read() as conn:
        return sum(conn.execute(select(func.count()).select_from(orders).where(
            orders.c.id.in_(chunk), orders.c.status == status)).scalar_one()
            for chunk in _chunks(ids))


def _engine():
    from orders_core import jobs, worker
    return jobs, worker


def run_job(db: Database, actor: Actor, action: str, numbers: list[str], *,
            gateways=None, settings=None) -> tuple[float, float, object]:
    """Enqueue a job over `numbers` and run it here to the end:
    (total seconds, worker seconds, the finished job)."""
    jobs, worker = _engine()
    kwargs = {}
    accepted = inspect.signature(worker.run_job_here).parameters
    if gateways is not None and "gateways" in accepted:
        kwargs["gateways"] = gateways
    if settings is not None and "settings" in accepted:
        kwargs["settings"] = settings
    start = time.perf_counter()
    job = jobs.enqueue(db, actor, action, order_numbers=numbers)
    queued = time.perf_counter()
    finished = worker.run_job_here(db, job.id, **kwargs)
    end = time.perf_counter()
    return end - start, end - queued, finished


def _job_counts(job) -> tuple[int, int]:
    return int(getattr(job, "succeeded", 0) or 0), int(getattr(job, "failed", 0) or 0)


# -- #3 -------------------------------------------------------------------------------------
def fulfill(db: Database, backend: str, *, repeat: int, orders_total: int,
            sizes: Sizes, paid: list[tuple[int, str]]) -> Figure:
    targets = paid[:sizes.fulfill]
    ids = [i for i, _ in targets]
    numbers = [n for _, n in targets]
    orm_ids = [i for i, _ in paid[sizes.fulfill:sizes.fulfill + sizes.orm]]
    rates, worker_rates, orm_rates, enqueue_s = [], [], [], []
    failures = 0
    for i in range(repeat):
        total, working, job = run_job(db, OPS, "fulfill", numbers)
        ok, failed = _job_counts(job)
        moved = count_status(db, ids, "fulfilled")
        if moved != len(ids) or ok != len(ids):
            failures += 1
            log(f"fulfill: WARNING job #{job.id} {job.status}: {ok} succeeded, {failed} failed, "
                f"{moved} of {len(ids)} orders fulfilled")
        rates.append(len(ids) / total)
        worker_rates.append(len(ids) / working)
        enqueue_s.append(total - working)
        put_back_fulfilled(db, ids)
        with timer() as elapsed:
            done = baselines.orm_fulfill_loop(db, orm_ids, OPS.label)
        orm_rates.append(done / elapsed())
        put_back_fulfilled(db, orm_ids)
        log(f"fulfill: repeat {i + 1}/{repeat}: {rates[-1]:,.0f} orders/s "
            f"(worker alone {worker_rates[-1]:,.0f}/s; ORM loop {orm_rates[-1]:,.0f}/s)")
    value = Stats.of(rates, "orders/s")
    baseline = Stats.of(orm_rates, "orders/s")
    need = 8_000 if backend == "sqlite" else 12_000
    at_scale = orders_total >= 1_000_000
    met = None
    if at_scale:
        met = value.median >= need and value.median >= 10 * baseline.median and not failures
    return Figure(
        key=f"bulk_fulfill.{backend}",
        title=f"Bulk Fulfill of {len(ids):,} paid orders via the job engine, events included",
        backend=backend, value=value, better="higher", baseline=baseline,
        baseline_title=f"per-order ORM loop ({len(orm_ids):,} orders)",
        target=f"≥ {need:,} orders/s and ≥ 10× baseline", met=met,
        extra={"orders": len(ids), "worker_only": Stats.of(worker_rates, "orders/s").as_dict(),
               "enqueue_seconds": Stats.of(enqueue_s, "s").as_dict(),
               "chunk_size": load_settings().job_chunk_size, "failed_repeats": failures})


# -- #4 -------------------------------------------------------------------------------------
class CountingGateway:
    """The real gateway, with the time of every request it receives recorded."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[float] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    def __getattr__(self, attribute):
        real = getattr(self.inner, attribute)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            with self._lock:
                self.calls.append(time.perf_counter())
            return real(*args, **kwargs)

        return call


def _refunded(db: Database, ids: list[int]) -> int:
    with db.read() as conn:
        return sum(conn.execute(select(func.count()).select_from(refunds).where(
            refunds.c.order_id.in_(chunk), refunds.c.status == "succeeded",
            refunds.c.action == "cancel")).scalar_one() for chunk in _chunks(ids))


def cancel(db: Database, backend: str, *, repeat: int, orders_total: int, sizes: Sizes,
           paid: list[tuple[int, str]]) -> list[Figure]:
    from orders_core.lifecycle import cancel_order

    pool = list(reversed(paid[sizes.fulfill + sizes.orm:]))
    need = repeat * (sizes.cancel + sizes.cancel_baseline + sizes.rate_orders)
    if len(pool) < need:
        raise RuntimeError(f"not enough paid orders for the cancel measurements "
                           f"({len(pool)} < {need})")
    take = iter(range(len(pool)))

    def slice_of(n: int) -> list[tuple[int, str]]:
        return [pool[next(take)] for _ in range(n)]

    rates, worker_rates, base_rates, problems = [], [], [], []
    for i in range(repeat):
        chosen = slice_of(sizes.cancel)
        ids = [o for o, _ in chosen]
        total, working, job = run_job(db, SUPPORT, "cancel", [n for _, n in chosen])
        ok, failed = _job_counts(job)
        refunded = _refunded(db, ids)
        if ok != len(ids) or refunded != len(ids):
            problems.append(f"repeat {i + 1}: {ok} succeeded, {failed} failed, {refunded} refunded")
        rates.append(len(ids) / total)
        worker_rates.append(len(ids) / working)
        single = slice_of(sizes.cancel_baseline)
        gateways = Gateways(db)
        with timer() as elapsed:
            for _, number in single:
                cancel_order(db, SUPPORT, number, gateways=gateways)
        base_rates.append(len(single) / elapsed())
        log(f"cancel: repeat {i + 1}/{repeat}: {rates[-1]:,.0f} orders/s "
            f"(worker alone {worker_rates[-1]:,.0f}/s; one at a time {base_rates[-1]:,.0f}/s)")
    value = Stats.of(rates, "orders/s")
    at_scale = orders_total >= 1_000_000
    cancel_figure = Figure(
        key=f"bulk_cancel.{backend}",
        title=f"Bulk Cancel with refunds of {sizes.cancel:,} paid orders (simulated gateway)",
        backend=backend, value=value, better="higher", baseline=Stats.of(base_rates, "orders/s"),
        baseline_title=f"lifecycle.cancel_order one by one ({sizes.cancel_baseline:,} orders)",
        target="≥ 1,500 orders/s", met=(value.median >= 1500 and not problems) if at_scale else None,
        notes="; ".join(problems),
        extra={"orders": sizes.cancel, "worker_only": Stats.of(worker_rates, "orders/s").as_dict(),
               "refund_concurrency": load_settings().refund_concurrency})

    # The rate limiter, through the same engine, with a limit well below what the
    # gateway took unthrottled just now (so the limiter, not the work, is what binds),
    # over about four seconds of requests per repeat.
    unthrottled = statistics.median(worker_rates) * 3  # list, retrieve, refund per order
    rps = float(max(5, int(unthrottled * 0.4)))
    per_repeat = max(5, min(sizes.rate_orders, int(rps * 4 / 3)))
    settings = dataclasses.replace(load_settings(), gateway_requests_per_second=rps)
    achieved, errors = [], []
    for i in range(repeat):
        chosen = slice_of(per_repeat)
        counting = CountingGateway(Gateways(db, settings).named("simulated"))
        gateways = Gateways(db, settings).use(counting)
        run_job(db, SUPPORT, "cancel", [n for _, n in chosen], gateways=gateways,
                settings=settings)
        calls = counting.calls
        rate = (len(calls) - 1) / (calls[-1] - calls[0]) if len(calls) > 1 else 0.0
        achieved.append(rate)
        errors.append(abs(rate - rps) / rps * 100)
        log(f"rate limiter: repeat {i + 1}/{repeat}: {len(calls)} requests at {rate:,.1f}/s "
            f"(limit {rps:g}/s)")
    error = Stats.of(errors, "%")
    rate_figure = Figure(
        key=f"rate_limiter.{backend}",
        title=f"Gateway rate limiter during a bulk Cancel (ORDERS_GATEWAY_RPS={rps:g})",
        backend=backend, value=Stats.of(achieved, "requests/s"), better="higher",
        target=f"within 5 % of {rps:g}/s", met=error.max <= 5.0,
        notes=(f"the limit is set to 40 % of the unthrottled request rate measured just before "
               f"({unthrottled:,.0f}/s), so that the limiter is what binds; worst deviation "
               f"{error.max:.1f} %"),
        extra={"limit": rps, "error_percent": error.as_dict(), "orders_per_repeat": per_repeat,
               "unthrottled_requests_per_second": round(unthrottled, 1)})
    return [cancel_figure, rate_figure]
