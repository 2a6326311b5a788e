"""Compatibility shim: the job engine lives in orders_core/job_engine/.

Kept only while the CLI (orders_core/cli_jobs.py) still imports `orders_core.worker`;
remove it once every importer uses orders_core.job_engine.
"""
from .job_engine import (
    MAX_ITEM_ATTEMPTS,
    PacedGateways,
    RateLimiter,
    Worker,
    embedded_worker_heartbeat_age,
    ensure_embedded_worker,
    gateway_rate,
    run_job_here,
    stop_embedded_worker,
)

__all__ = ["Worker", "run_job_here", "ensure_embedded_worker", "stop_embedded_worker",
           "embedded_worker_heartbeat_age", "RateLimiter", "PacedGateways", "gateway_rate",
           "MAX_ITEM_ATTEMPTS"]
