"""Settings from environment variables, with safe defaults (documented in the README)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .errors import OrdersError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(OrdersError):
    """An environment variable holds a value Orders Desk cannot use."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    gateway: str
    stripe_api_key: str | None
    stripe_api_base: str | None
    stripe_max_network_retries: int
    job_lease_seconds: int
    payment_lease_seconds: int
    job_chunk_size: int
    refund_concurrency: int
    # None: the gateway's own default (unlimited offline, 25/s for Stripe test mode).
    gateway_requests_per_second: float | None
    embedded_worker: bool

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("ORDERS_DATA_DIR") or PROJECT_ROOT / "data")
    url = os.environ.get("ORDERS_DATABASE_URL") or f"sqlite:///{data_dir / 'orders.db'}"
    return Settings(
        data_dir=data_dir,
        database_url=url,
        gateway=(os.environ.get("ORDERS_PAYMENT_GATEWAY") or "simulated").strip().lower(),
        stripe_api_key=os.environ.get("STRIPE_API_KEY") or None,
        stripe_api_base=os.environ.get("STRIPE_API_BASE") or None,
        stripe_max_network_retries=_int("STRIPE_MAX_NETWORK_RETRIES", 2),
        job_lease_seconds=_int("ORDERS_JOB_LEASE_SECONDS", 30),
        payment_lease_seconds=_int("ORDERS_PAYMENT_LEASE_SECONDS", 60),
        job_chunk_size=_int("ORDERS_JOB_CHUNK_SIZE", 500),
        refund_concurrency=_int("ORDERS_REFUND_CONCURRENCY", 4),
        gateway_requests_per_second=_float("ORDERS_GATEWAY_RPS", 0.0) or None,
        embedded_worker=os.environ.get("ORDERS_EMBEDDED_WORKER", "1") not in ("0", "false", "no"),
    )
