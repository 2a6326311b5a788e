"""Settings from environment variables, with safe defaults (documented in the README).

Read once per process (`load_settings()` is cached): a changed variable takes effect
at the next start. Tests that change the environment call `reload_settings()`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from pathlib import Path

from .errors import OrdersError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger(__name__)


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


def _positive_int(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, not {raw!r}")


def _threshold(name: str, default: int) -> int:
    """A whole number >= 0; anything else is logged and the default used (a page must
    not fail over a mistyped threshold)."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if re.fullmatch(r"\d{1,15}", raw):
        return int(raw)
    log.warning("%s must be a whole number >= 0, not %r; using %d", name, raw, default)
    return default


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (os.environ.get(name) or "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


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
    # Set-based chunks of a mass Fulfill in flight at once per worker (PostgreSQL).
    job_move_concurrency: int
    # None: the gateway's own default (unlimited offline, 25/s for Stripe test mode).
    gateway_requests_per_second: float | None
    embedded_worker: bool
    # Staff sessions (orders_core/sessions.py).
    session_idle_minutes: int = 720
    session_max_days: int = 7
    # "auto": Secure when the request came over HTTPS; "1"/"0" force it either way.
    session_cookie_secure: str = "auto"
    password_sign_in: bool = True
    # Failed sign-ins per account and client address before that pair waits.
    sign_in_max_failures: int = 5
    sign_in_lockout_minutes: int = 15
    # Mass actions at or below these sizes are confirmed with one click; above them the
    # person types the number of orders.
    confirm_above_orders: int = 100
    confirm_above_refund: int = 100_000  # minor units, in any one currency
    # The CLI prints the traceback of an unexpected failure.
    debug: bool = False
    # The signing secret of the Stripe webhook endpoint (whsec_...); never logged.
    stripe_webhook_secret: str | None = dataclasses.field(default=None, repr=False)

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"


@functools.cache
def load_settings() -> Settings:
    """This process's settings, read from the environment on first use."""
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
        job_move_concurrency=_int("ORDERS_JOB_MOVE_CONCURRENCY", 2),
        gateway_requests_per_second=_float("ORDERS_GATEWAY_RPS", 0.0) or None,
        embedded_worker=_flag("ORDERS_EMBEDDED_WORKER", True),
        session_idle_minutes=_positive_int("ORDERS_SESSION_IDLE_MINUTES", 720),
        session_max_days=_positive_int("ORDERS_SESSION_MAX_DAYS", 7),
        session_cookie_secure=_choice("ORDERS_SESSION_COOKIE_SECURE", "auto", ("auto", "1", "0")),
        password_sign_in=_flag("ORDERS_PASSWORD_SIGN_IN", True),
        sign_in_max_failures=_positive_int("ORDERS_SIGN_IN_MAX_FAILURES", 5),
        sign_in_lockout_minutes=_positive_int("ORDERS_SIGN_IN_LOCKOUT_MINUTES", 15),
        confirm_above_orders=_threshold("ORDERS_CONFIRM_ABOVE_ORDERS", 100),
        confirm_above_refund=_threshold("ORDERS_CONFIRM_ABOVE_REFUND", 100_000),
        debug=os.environ.get("ORDERS_DEBUG") == "1",
        stripe_webhook_secret=(os.environ.get("STRIPE_WEBHOOK_SECRET") or "").strip() or None,
    )


def reload_settings() -> Settings:
    """Read the environment again (tests, or a tool that changed it)."""
    load_settings.cache_clear()
    return load_settings()
