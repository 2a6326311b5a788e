"""The job engine: workers that run the queued bulk jobs (orders_core/jobs.py).

One module per concern:
  pacing.py    how fast and how many at once the gateway is called (rate limit, pool)
  claims.py    claiming chunks and exports, leases, the heartbeat that renews them
  moves.py     running a chunk of a move job: retries, the timeline after a crash, recording
  plain_moves.py  a mass Fulfill's chunk set-based: claim, move, events, record in one transaction
  exports.py   running an export job
  worker.py    the Worker loop composing them; run_job_here (the CLI's --wait)
  embedded.py  the app server's embedded worker, in a process of its own

Every module logs to "orders_core.worker", which the CLI's worker command shows on stderr.
"""

from .embedded import (
    embedded_worker_heartbeat_age,
    embedded_worker_pid,
    ensure_embedded_worker,
    stop_embedded_worker,
)
from .moves import MAX_ITEM_ATTEMPTS
from .pacing import PacedGateways, RateLimiter, gateway_rate
from .worker import Worker, default_worker_name, run_job_here

__all__ = [
    "Worker",
    "run_job_here",
    "default_worker_name",
    "ensure_embedded_worker",
    "stop_embedded_worker",
    "embedded_worker_heartbeat_age",
    "embedded_worker_pid",
    "RateLimiter",
    "PacedGateways",
    "gateway_rate",
    "MAX_ITEM_ATTEMPTS",
]
