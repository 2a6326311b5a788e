"""Gateway pacing: how fast and how many at once the bulk jobs call the payment gateway.

Gateway calls (Cancel and Return refund each order) run on a bounded thread pool
(ORDERS_REFUND_CONCURRENCY) through a per-process requests-per-second limiter
(ORDERS_GATEWAY_RPS; by default none for the simulated gateway and 25/s for Stripe,
its test-mode limit).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..config import Settings
from ..payments import GATEWAY_NAMES, Gateways

STRIPE_TEST_MODE_RPS = 25.0


class RateLimiter:
    """Paces calls to at most `rate` per second, evenly, across threads."""

    def __init__(self, rate: float):
        self.rate = float(rate)
        self._interval = 1.0 / self.rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


_limiters: dict[tuple[str, float], RateLimiter] = {}
_limiters_lock = threading.Lock()


def gateway_rate(gateway_name: str, settings: Settings) -> float | None:
    """Requests per second allowed to `gateway_name` from this process (None: no limit)."""
    if settings.gateway_requests_per_second:
        return float(settings.gateway_requests_per_second)
    return STRIPE_TEST_MODE_RPS if gateway_name == "stripe" else None


def refund_batch_size(settings: Settings, chunk_size: int) -> int:
    """How many refunds to claim at once (each with a lease of ORDERS_PAYMENT_LEASE_SECONDS)
    before their gateway calls: under a requests-per-second limit, batches small enough
    that their calls end well within that lease (each order takes about three requests)."""
    rates = [r for r in (gateway_rate(n, settings) for n in GATEWAY_NAMES) if r]
    if not rates:
        return chunk_size
    return max(10, min(chunk_size, int(min(rates) * settings.payment_lease_seconds / 6)))


# A paced chunk is sized to take about this long, so that the progress stored at the end
# of each chunk moves at least once a second on the jobs pages.
PROGRESS_SECONDS = 0.8
REQUESTS_PER_REFUND = 3  # about: look up the payment, create the refund, read it back


def move_chunk_size(settings: Settings, chunk_size: int, refunds: bool) -> int:
    """Orders per claimed chunk of a move job. Unpaced, or without gateway calls (a
    Fulfill), ORDERS_JOB_CHUNK_SIZE; refunds under the configured gateway's
    requests-per-second limit, chunks whose calls take about PROGRESS_SECONDS (the
    per-chunk record costs milliseconds)."""
    rate = gateway_rate(settings.gateway, settings)  # the gateway new orders are paid through
    if not refunds or not rate:
        return chunk_size
    return max(1, min(chunk_size, int(rate * PROGRESS_SECONDS / REQUESTS_PER_REFUND)))


def _limiter(name: str, rate: float) -> RateLimiter:
    with _limiters_lock:  # one per process and gateway: every worker thread shares it
        limiter = _limiters.get((name, rate))
        if limiter is None:
            limiter = _limiters[(name, rate)] = RateLimiter(rate)
        return limiter


class _PacedGateway:
    """A gateway whose every request first waits for the limiter."""

    def __init__(self, inner: Any, limiter: RateLimiter):
        self.inner = inner
        self.limiter = limiter

    @property
    def name(self) -> str:
        return str(self.inner.name)

    def __getattr__(self, attribute: str) -> Any:
        real = getattr(self.inner, attribute)
        if not callable(real):
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            self.limiter.acquire()
            return real(*args, **kwargs)

        return call


class PacedGateways:
    """Gateways (orders_core.payments.Gateways) with each gateway's requests paced."""

    def __init__(self, base: Gateways, settings: Settings):
        self.base = base
        self.db = base.db
        self.settings = settings
        self._paced: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> Any:
        return self.named(self.settings.gateway)

    def named(self, name: str) -> Any:
        with self._lock:
            gateway = self._paced.get(name)
            if gateway is None:
                inner = self.base.named(name)
                rate = gateway_rate(name, self.settings)
                gateway = _PacedGateway(inner, _limiter(name, rate)) if rate else inner
                self._paced[name] = gateway
            return gateway

    def use(self, gateway: Any) -> PacedGateways:
        with self._lock:
            self.base.use(gateway)
            self._paced.pop(gateway.name, None)
        return self


class GatewayCallPool:
    """lifecycle's run_gateway_calls hook: the per-order gateway calls of a chunk on a
    bounded thread pool, started on first use."""

    def __init__(self, concurrency: int):
        self.concurrency = max(1, concurrency)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def __call__(self, call: Callable[[Any], object], pending: Sequence[Any]) -> None:
        if self.concurrency <= 1 or len(pending) <= 1:
            for item in pending:
                call(item)
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="orders-gateway"
            )
        futures = [self._pool.submit(call, item) for item in pending]
        concurrent.futures.wait(futures)
        for future in futures:
            future.result()  # a crash in one call is the chunk's crash

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
