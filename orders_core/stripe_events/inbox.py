"""The inbox of Stripe events: stored once by their id, as they came, then claimed
one at a time by a worker (a lease, so two workers never apply the same event) and
closed with what was done: the outcome, the matched order, an error.

Storing is all the webhook route does, so Stripe gets its 2xx at once whatever the
effects cost; a duplicate (Stripe retries, and sometimes sends an event twice) finds
its id taken and is acknowledged without a second row."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import utcnow
from ..db import Database
from ..jobs import job_queued
from ..payments.stripe_webhooks import check_event_shape
from ..schema import stripe_events, stripe_object_versions

CLAIM_SECONDS = 120  # a worker's hold on the event it applies
MAX_ATTEMPTS = 5  # an event whose effect keeps failing is closed as failed after these


class Outcome:
    APPLIED = "applied"  # the event changed our books
    NO_CHANGE = "no_change"  # we knew already (our own refund reported back, an order already Paid)
    STALE = "stale"  # older than an event already applied to the same object
    UNMATCHED = "unmatched"  # about a payment we do not know: kept, shown, never dropped
    IGNORED = "ignored"  # a type Orders Desk does not act on
    FAILED = "failed"  # the effect failed MAX_ATTEMPTS times
    DEFERRED = "deferred"  # not yet: a charge of the order is in flight; tried again later


OUTCOMES = (
    Outcome.APPLIED,
    Outcome.NO_CHANGE,
    Outcome.STALE,
    Outcome.UNMATCHED,
    Outcome.IGNORED,
    Outcome.FAILED,
)


@dataclasses.dataclass(frozen=True)
class Received:
    """What storing an event did: `new` is False for a duplicate of a stored event."""

    id: int
    event_id: str
    new: bool


def _insert(dialect: str) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(stripe_events)


def receive_event(db: Database, event: dict[str, Any], *, source: str = "stripe") -> Received:
    """Store a verified event once (insert-once on its id) for a worker to apply; wakes
    this process's worker. The webhook route calls this after verifying the signature,
    the simulated gateway after making a change at its ledger."""
    check_event_shape(event)
    obj = event["data"]["object"]
    now = utcnow()
    with db.write() as conn:
        inserted = conn.execute(
            _insert(conn.dialect.name)
            .values(
                event_id=event["id"],
                type=event["type"],
                event_created=int(event["created"]),
                object_id=str(obj.get("id"))[:255],
                source=source,
                payload=json.dumps(event, separators=(",", ":"), sort_keys=True),
                received_at=now,
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(stripe_events.c.id)
        ).scalar()
        if inserted is None:
            existing = conn.execute(
                select(stripe_events.c.id).where(stripe_events.c.event_id == event["id"])
            ).scalar_one()
            return Received(existing, event["id"], new=False)
    job_queued.set()  # the embedded worker looks at once instead of at its next poll
    return Received(inserted, event["id"], new=True)


@dataclasses.dataclass(frozen=True)
class ClaimedEvent:
    id: int
    event_id: str
    type: str
    created: int
    attempts: int
    event: dict[str, Any]


def claim_next(db: Database) -> ClaimedEvent | None:
    """The oldest (by Stripe's `created`) event still to apply, leased to the caller."""
    now = utcnow()
    with db.write() as conn:
        query = (
            select(stripe_events.c.id)
            .where(
                stripe_events.c.processed_at.is_(None),
                stripe_events.c.locked_until.is_(None) | (stripe_events.c.locked_until <= now),
                stripe_events.c.retry_at.is_(None) | (stripe_events.c.retry_at <= now),
            )
            .order_by(stripe_events.c.event_created, stripe_events.c.id)
            .limit(1)
        )
        if db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        event_id = conn.execute(query).scalar()
        if event_id is None:
            return None
        row = conn.execute(
            update(stripe_events)
            .where(stripe_events.c.id == event_id)
            .values(
                locked_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
                attempts=stripe_events.c.attempts + 1,
            )
            .returning(
                stripe_events.c.id,
                stripe_events.c.event_id,
                stripe_events.c.type,
                stripe_events.c.event_created,
                stripe_events.c.attempts,
                stripe_events.c.payload,
            )
        ).one()
    return ClaimedEvent(
        row.id, row.event_id, row.type, row.event_created, row.attempts, json.loads(row.payload)
    )


def close_event(
    conn: Connection, event_row_id: int, outcome: str, order_id: int | None, detail: str = ""
) -> None:
    """Record what applying the event did (in the transaction of its effect)."""
    conn.execute(
        update(stripe_events)
        .where(stripe_events.c.id == event_row_id)
        .values(
            processed_at=utcnow(),
            outcome=outcome,
            order_id=order_id,
            detail=detail[:2000] or None,
            error=None,
            locked_until=None,
            retry_at=None,
        )
    )


def defer_event(
    db: Database,
    claimed: ClaimedEvent,
    seconds: float,
    *,
    error: str | None = None,
    order_id: int | None = None,
    detail: str = "",
) -> None:
    """Try the event again in `seconds` (a charge in flight; a failure), or close it as
    failed after MAX_ATTEMPTS."""
    now = utcnow()
    with db.write() as conn:
        if error is not None and claimed.attempts >= MAX_ATTEMPTS:
            conn.execute(
                update(stripe_events)
                .where(stripe_events.c.id == claimed.id)
                .values(
                    processed_at=now,
                    outcome=Outcome.FAILED,
                    order_id=order_id,
                    error=error[:2000],
                    locked_until=None,
                    retry_at=None,
                )
            )
            return
        conn.execute(
            update(stripe_events)
            .where(stripe_events.c.id == claimed.id)
            .values(
                outcome=Outcome.DEFERRED,
                order_id=order_id,
                detail=detail[:2000] or None,
                error=error[:2000] if error else None,
                locked_until=None,
                retry_at=now + dt.timedelta(seconds=seconds),
            )
        )


# -- the order of events about one object -----------------------------------------------------
def is_stale(conn: Connection, object_id: str, created: int) -> bool:
    """True when an event newer than `created` was applied to the object already."""
    last = conn.execute(
        select(stripe_object_versions.c.last_event_created).where(
            stripe_object_versions.c.object_id == object_id
        )
    ).scalar()
    return last is not None and last > created


def remember_version(conn: Connection, object_id: str, created: int, event_id: str) -> None:
    """The object's state is now as of `created` (never moved backwards)."""
    insert: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        stripe_object_versions
    ).values(object_id=object_id, last_event_created=created, last_event_id=event_id)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["object_id"],
            set_={
                "last_event_created": insert.excluded.last_event_created,
                "last_event_id": insert.excluded.last_event_id,
            },
            where=stripe_object_versions.c.last_event_created <= insert.excluded.last_event_created,
        )
    )


__all__ = [
    "Outcome",
    "OUTCOMES",
    "Received",
    "ClaimedEvent",
    "receive_event",
    "claim_next",
    "close_event",
    "defer_event",
    "is_stale",
    "remember_version",
    "CLAIM_SECONDS",
    "MAX_ATTEMPTS",
]
