"""Running a claimed chunk of a move job (fulfill, cancel, return) and recording it.

- Transient gateway failures (outage, refund in flight elsewhere) are retried with
  exponential backoff; permanent ones fail that item and leave the order unchanged
  (lifecycle.apply_moves guarantees it).
- An item claimed again after a crash is first checked against the order's own
  timeline: an event of this job that made the move means it succeeded (the crash
  came between the move and its record); lifecycle's crash-safe refunds take care of
  the money (a pending refund is resumed with its idempotency key, never repeated).
- An item claimed MAX_ITEM_ATTEMPTS times without being recorded fails with the last
  error, so one poisonous order cannot stop a job forever.
- Recording a chunk is guarded by the claim (worker id, item still pending), so the
  results of a worker that lost its claim are dropped rather than recorded twice.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update

from ..chunking import ID_LIST_LIMIT, chunks
from ..clock import utcnow
from ..db import Database
from ..errors import OrdersError, StaleOrder
from ..job_failures import FailureKind, failure_kind
from ..jobs import ITEM_FAILED, ITEM_PENDING, ITEM_SUCCEEDED
from ..lifecycle import GatewayRunner, apply_moves
from ..schema import job_items, jobs, order_events
from ..status import BULK_SOURCE_STATUSES, MOVES, Action, IllegalMove
from .claims import Claim
from .pacing import PacedGateways

log = logging.getLogger("orders_core.worker")

MAX_ITEM_ATTEMPTS = 5
REFUNDING = frozenset({Action.CANCEL, Action.RETURN})
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 5.0


class ItemResult(NamedTuple):
    """What happened to one order of a chunk: moved, or why not and what kind of failure."""

    ok: bool
    reason: str | None = None
    kind: FailureKind | None = None


# {order id: result} for the orders of a chunk that are done with.
Results = dict[int, ItemResult]
SUCCEEDED = ItemResult(True)


@dataclasses.dataclass
class ChunkMover:
    """Moves the orders of a claimed chunk through lifecycle.apply_moves."""

    db: Database
    gateways: PacedGateways
    run_gateway_calls: GatewayRunner
    refund_batch: int
    retry_budget: float  # seconds a chunk keeps retrying transient failures

    def move(self, claim: Claim, stop: threading.Event) -> tuple[Results, list[int]]:
        """The chunk's results and the order ids to hand back unprocessed (stopping)."""
        done: Results = {}
        for item in claim.items:
            if item.attempts > MAX_ITEM_ATTEMPTS:
                last = f"; the last attempt failed with {item.reason}" if item.reason else ""
                done[item.order_id] = ItemResult(
                    False,
                    f"Gave up on order {item.number} after {item.attempts - 1} attempts{last}.",
                    FailureKind.GAVE_UP,
                )
        todo = [i.order_id for i in claim.items if i.order_id not in done]
        if claim.actor is None:
            for order_id in todo:
                done[order_id] = ItemResult(False, claim.actor_error, FailureKind.PERMISSION)
            return done, []
        move = claim.action.move
        if move is None:  # exports run in exports.py; a chunk of one here is a bug
            raise OrdersError(f"Job #{claim.job_id} is an export: it has no move to make.")
        # Claimed before: the crash may have come after the move; ask the timeline.
        again = {i.order_id for i in claim.items if i.attempts > 1 and i.order_id in todo}
        if again:
            done.update(earlier_results(self.db, claim.job_id, move, sorted(again)))
            todo = [order_id for order_id in todo if order_id not in done]
        released: list[int] = []
        maybe_mine: list[int] = []
        deadline = time.monotonic() + self.retry_budget
        tries = 0
        while todo:
            try:
                outcomes = []
                for batch in chunks(todo, self.refund_batch if move in REFUNDING else len(todo)):
                    outcomes += apply_moves(
                        self.db,
                        claim.actor,
                        move,
                        batch,
                        reason=claim.note,
                        gateways=self.gateways,
                        job_id=claim.job_id,
                        bulk=True,
                        run_gateway_calls=self.run_gateway_calls,
                    )
            except OrdersError as error:  # the whole chunk refused (permission, reason)
                for order_id in todo:
                    done[order_id] = ItemResult(False, str(error), failure_kind(error))
                break
            transient = []
            for outcome in outcomes:
                if outcome.ok:
                    done[outcome.order_id] = SUCCEEDED
                elif outcome.transient:
                    transient.append(outcome)
                else:
                    done[outcome.order_id] = ItemResult(False, outcome.reason, failure_kind(outcome.error))
                    if outcome.order_id in again and isinstance(outcome.error, (IllegalMove, StaleOrder)):
                        maybe_mine.append(outcome.order_id)
            if not transient:
                break
            tries += 1
            delay = backoff(tries, [o.error for o in transient])
            if stop.is_set():
                released = [o.order_id for o in transient]
                break
            if time.monotonic() + delay > deadline:
                for o in transient:
                    done[o.order_id] = ItemResult(
                        False,
                        f"{o.reason} (gave up after {tries} tries)",
                        failure_kind(o.error, transient=True),
                    )
                break
            log.info(
                "job #%d: %d orders failed transiently; retrying in %.1f s",
                claim.job_id,
                len(transient),
                delay,
            )
            if stop.wait(delay):
                released = [o.order_id for o in transient]
                break
            todo = [o.order_id for o in transient]
            # Some may have been moved by a worker whose claim ran out meanwhile.
            again.update(todo)
        if maybe_mine:  # refused because this job already moved it (a lost claim)
            for order_id, result in earlier_results(self.db, claim.job_id, move, maybe_mine).items():
                if result.ok:
                    done[order_id] = result
        return done, released


def earlier_results(db: Database, job_id: int, move: Action, order_ids: list[int]) -> Results:
    """What job `job_id` already did to these orders, from their timelines."""
    source = next(iter(BULK_SOURCE_STATUSES[move]))
    target = MOVES[(source, move)].value
    results: Results = {}
    with db.read() as conn:
        for chunk in chunks(order_ids, ID_LIST_LIMIT):
            for row in conn.execute(
                select(
                    order_events.c.order_id,
                    order_events.c.action,
                    order_events.c.to_status,
                    order_events.c.note,
                )
                .where(order_events.c.job_id == job_id, order_events.c.order_id.in_(chunk))
                .order_by(order_events.c.id)
            ):
                if row.action == move.value and row.to_status == target:
                    results[row.order_id] = SUCCEEDED
                elif results.get(row.order_id, ItemResult(False)).ok:
                    continue
                elif row.action == "refund_failed":
                    results[row.order_id] = ItemResult(False, row.note, FailureKind.REFUND_FAILED)
                elif row.action == "refund":
                    results[row.order_id] = ItemResult(
                        False,
                        "The order changed while its refund was "
                        "under way; the refund was recorded. " + (row.note or ""),
                        FailureKind.STALE,
                    )
    return results


def record_chunk(db: Database, worker_id: str, claim: Claim, done: Results, released: list[int]) -> int:
    """Record the chunk's results, only for the items `worker_id` still holds: each
    UPDATE is guarded by the claim (this worker's id, the item still pending). Returns
    how many items were recorded."""
    now = utcnow()
    item_of = {i.order_id: i.id for i in claim.items}
    reasons = {item_of[o]: r.reason or "Failed." for o, r in done.items() if not r.ok}
    kinds = {item_of[o]: (r.kind or FailureKind.OTHER).value for o, r in done.items() if not r.ok}
    handed_back = [i for o, i in item_of.items() if o not in done]
    expected = sum(1 for r in done.values() if r.ok)
    mine = (job_items.c.worker == worker_id) & (job_items.c.status == ITEM_PENDING)
    failed: list[int] = []
    with db.write() as conn:
        for chunk in chunks(list(reasons), ID_LIST_LIMIT):
            failed += (
                conn.execute(
                    update(job_items)
                    .where(job_items.c.id.in_(chunk), mine)
                    .values(status=ITEM_FAILED, finished_at=now, lease_expires_at=None)
                    .returning(job_items.c.id)
                )
                .scalars()
                .all()
            )
        if failed:  # now final and ours: their reasons and kinds of failure
            conn.execute(
                update(job_items)
                .where(job_items.c.id == bindparam("b_id"))
                .values(reason=bindparam("b_reason"), failure_kind=bindparam("b_kind")),
                [{"b_id": i, "b_reason": reasons[i], "b_kind": kinds[i]} for i in failed],
            )
        for chunk in chunks(handed_back, ID_LIST_LIMIT):
            conn.execute(
                update(job_items).where(job_items.c.id.in_(chunk), mine).values(lease_expires_at=None)
            )
        # What is left of the claim, still leased, is what succeeded: no list of ids
        # (the seq range keeps it to this chunk's stretch of the index).
        succeeded = 0
        if expected:
            low, high = claim.seq_range
            succeeded = conn.execute(
                update(job_items)
                .where(
                    job_items.c.job_id == claim.job_id,
                    job_items.c.status == ITEM_PENDING,
                    job_items.c.seq >= low,
                    job_items.c.seq <= high,
                    job_items.c.worker == worker_id,
                    job_items.c.lease_expires_at.is_not(None),
                )
                .values(status=ITEM_SUCCEEDED, reason=None, finished_at=now, lease_expires_at=None)
            ).rowcount
        if succeeded > expected:  # never: the claim holds exactly these items
            raise RuntimeError(
                f"job #{claim.job_id}: {succeeded} items recorded as "
                f"succeeded, {expected} expected; not recording the chunk"
            )
        if succeeded or failed:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == claim.job_id)
                .values(succeeded=jobs.c.succeeded + succeeded, failed=jobs.c.failed + len(failed))
            )
    lost = expected + len(reasons) - succeeded - len(failed)
    if lost:
        log.warning(
            "job #%d: %d items were claimed by another worker after this "
            "worker's lease ran out; their results were left to it",
            claim.job_id,
            lost,
        )
    return succeeded + len(failed)


def backoff(tries: int, errors: Sequence[Any]) -> float:
    """Seconds to wait before try `tries` + 1, at least what the gateway asked for."""
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (tries - 1))
    hints = [float(e.retry_after) for e in errors if getattr(e, "retry_after", None)]
    if hints:
        delay = max(delay, min(min(hints), 30.0))
    return delay
