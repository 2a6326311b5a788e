"""/healthz says the process answers; /readyz whether it should get traffic: the
database answers, its schema is at the newest migration, and the embedded job
worker (when this server runs one) looked for work recently."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text

from orders_core.config import load_settings
from orders_core.db import current_revision, head_revision, open_database

# The worker looks for work at least every poll (1 s) and after every chunk; a
# chunk of refunds under a tight rate limit can take a while, hence the margin.
WORKER_STALE_SECONDS = 120.0


@dataclasses.dataclass(frozen=True)
class Readiness:
    checks: dict[str, dict]

    @property
    def ready(self) -> bool:
        return all(check["ok"] for check in self.checks.values())

    def as_json(self) -> dict:
        return {"status": "ready" if self.ready else "not ready", "checks": self.checks}


def readiness(database_url: str | None = None) -> Readiness:
    checks: dict[str, dict] = {}
    try:
        db = open_database(database_url, run_migrations=False)
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
        current, head = current_revision(db.engine), head_revision()
        checks["migrations"] = {"ok": current == head, "current": current, "head": head}
    except Exception as error:  # noqa: BLE001 - reported, not raised: this is the probe
        checks["database"] = {"ok": False, "error": type(error).__name__}
    if load_settings().embedded_worker:
        from orders_core.job_engine import embedded_worker_heartbeat_age, embedded_worker_pid

        age = embedded_worker_heartbeat_age(database_url)
        checks["embedded_worker"] = (
            {"ok": False, "error": "not running"}
            if age is None
            else {
                "ok": age <= WORKER_STALE_SECONDS,
                "seconds_since_heartbeat": round(age, 1),
                "pid": embedded_worker_pid(database_url),  # its own process
            }
        )
    return Readiness(checks)
