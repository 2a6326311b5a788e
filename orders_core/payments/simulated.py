"""The offline gateway (the default): Stripe's test-mode behaviour with its own
ledger in our database, so the app runs on a fresh machine with no keys.

It plays the part of a remote system: each call runs in its own transaction and
commits before it answers, exactly as Stripe's books would change before a
response reaches us. Idempotency keys behave as Stripe's do: the same key with the
same request replays the first answer (errors included); with a different request
it is an error.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator

from sqlalchemy import func, insert, select, update

from ..clock import utcnow
from ..db import Database
from ..schema import sim_charges, sim_disputes, sim_refunds
from .base import CardDeclined, Charge, GatewayRefund, InvalidToken, PaymentError, RefundFailed
from .card_tokens import DECLINE_MESSAGES, TEST_TOKENS, TestToken
from .listing import ListedPayment

# Plain SQL at the driver level: this ledger stands in for a remote service, and
# bulk refunds call it once per order, so it skips statement construction entirely.
_SQL = {
    "charge": "SELECT id, amount, currency, status, decline_code FROM sim_charges WHERE id = :id",
    "new_charge": "INSERT INTO sim_charges (id, amount, currency, status, reference, created_at) "
    "VALUES (:id, :amount, :currency, 'requires_confirmation', :reference, :now)",
    "set_charge": "UPDATE sim_charges SET status = :status, card_brand = :brand, "
    "decline_code = :decline WHERE id = :id",
    "cancel_charge": "UPDATE sim_charges SET status = 'canceled' WHERE id = :id AND status <> 'succeeded'",
    "refunded": "SELECT COALESCE(SUM(amount), 0) FROM sim_refunds WHERE charge_id = :id",
    "new_refund": "INSERT INTO sim_refunds (id, charge_id, amount, currency, reference, created_at) "
    "VALUES (:id, :charge_id, :amount, :currency, :reference, :now)",
    "refunds": "SELECT id, charge_id, amount, currency, reference FROM sim_refunds "
    "WHERE charge_id = :id ORDER BY created_at, id",
    "charges_page": "SELECT id, status, amount, currency, reference, created_at FROM sim_charges "
    "WHERE created_at >= :start AND created_at < :end AND (created_at > :after_at "
    "OR (created_at = :after_at AND id > :after_id)) ORDER BY created_at, id LIMIT :size",
    "refunds_page": "SELECT id, charge_id, amount, currency, reference, created_at FROM sim_refunds "
    "WHERE created_at >= :start AND created_at < :end AND (created_at > :after_at "
    "OR (created_at = :after_at AND id > :after_id)) ORDER BY created_at, id LIMIT :size",
    "key": 'SELECT request_hash, response FROM sim_idempotency_keys WHERE "key" = :key',
    "new_key": 'INSERT INTO sim_idempotency_keys ("key", request_hash, response, created_at) '
    "VALUES (:key, :hash, :response, :now)",
}

# PostgreSQL: the common answer of a call as one statement in autocommit (one round trip,
# atomic by itself: the ledger's change and the idempotency key commit together or not at
# all). A statement that changes nothing (a key seen before, a charge in another state, a
# refund that would exceed the charge) or fails on a concurrent use of the key leaves the
# call to the transaction above (`_idempotent`), which answers every case.
_ONE_STATEMENT = {
    "create": """
WITH k AS (
  INSERT INTO sim_idempotency_keys ("key", request_hash, response, created_at)
  VALUES (%(key)s, %(hash)s, %(response)s, %(now)s) ON CONFLICT ("key") DO NOTHING RETURNING "key")
INSERT INTO sim_charges (id, amount, currency, status, reference, created_at)
SELECT %(id)s, %(amount)s, %(currency)s, 'requires_confirmation', %(reference)s, %(now)s FROM k
RETURNING id""",
    "confirm": """
WITH c AS (
  UPDATE sim_charges SET status = %(status)s, card_brand = %(brand)s, decline_code = %(decline)s
  WHERE id = %(id)s AND status NOT IN ('succeeded', 'canceled')
    AND NOT EXISTS (SELECT 1 FROM sim_idempotency_keys WHERE "key" = %(key)s)
  RETURNING amount, currency)
INSERT INTO sim_idempotency_keys ("key", request_hash, response, created_at)
SELECT %(key)s, %(hash)s, COALESCE(%(response)s::text, json_build_object('ok', json_build_object(
  'payment_id', %(id)s::text, 'status', 'succeeded', 'amount', c.amount, 'currency', c.currency))::text),
  %(now)s FROM c
RETURNING response""",
    "refund": """
WITH c AS (
  SELECT currency FROM sim_charges
  WHERE id = %(charge_id)s AND status = 'succeeded' AND decline_code IS DISTINCT FROM 'refund_fail'
    AND amount >= %(amount)s::bigint
      + (SELECT COALESCE(SUM(amount), 0) FROM sim_refunds WHERE charge_id = %(charge_id)s)
    AND NOT EXISTS (SELECT 1 FROM sim_idempotency_keys WHERE "key" = %(key)s)),
k AS (
  INSERT INTO sim_idempotency_keys ("key", request_hash, response, created_at)
  SELECT %(key)s, %(hash)s, json_build_object('ok', json_build_object(
    'refund_id', %(id)s::text, 'payment_id', %(charge_id)s::text, 'amount', %(amount)s::bigint,
    'currency', c.currency, 'status', 'succeeded', 'reference', %(reference)s::text))::text, %(now)s
  FROM c RETURNING response),
r AS (
  INSERT INTO sim_refunds (id, charge_id, amount, currency, reference, created_at)
  SELECT %(id)s, %(charge_id)s, %(amount)s, c.currency, %(reference)s, %(now)s FROM c, k RETURNING id)
SELECT k.response FROM k, r""",
}


class SimulatedGateway:
    name = "simulated"

    def __init__(self, db: Database):
        self.db = db
        if db.is_sqlite:
            self._sql = _SQL  # sqlite3 takes :name parameters as they are
            self._now = lambda: utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's format
        else:
            self._sql = {k: _pyformat(v) for k, v in _SQL.items()}
            self._now = utcnow

    def _run(self, cursor, name: str, **params):
        cursor.execute(self._sql[name], params)
        return cursor

    def _one_statement(self, name: str, **params) -> str | None:
        """PostgreSQL: run `name` of _ONE_STATEMENT in autocommit; the response it stored,
        or None when it changed nothing (then the transactional path answers)."""
        if not self.db.is_postgres:
            return None
        raw = self.db.engine.raw_connection()
        try:
            driver = raw.driver_connection
            driver.autocommit = True
            try:
                row = driver.execute(_ONE_STATEMENT[name], params).fetchone()
            except self.db.engine.dialect.loaded_dbapi.IntegrityError:
                return None  # the same key used at the same moment: the other call answers
            finally:
                driver.autocommit = False
        finally:
            raw.close()  # back to the pool
        return None if row is None else row[0]

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator:
        """A DBAPI cursor in its own transaction on a pooled connection: committed
        before the gateway answers, as a remote ledger would be."""
        raw = self.db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self.db.is_sqlite:
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield cursor
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()  # back to the pool

    # -- charges -----------------------------------------------------------------
    def create_payment(self, *, amount, currency, reference, idempotency_key):
        request = {"op": "create", "amount": amount, "currency": currency, "reference": reference}
        if self.db.is_postgres:
            payment_id = "pi_sim_" + uuid.uuid4().hex[:24]
            response = _charge_json(payment_id, "requires_confirmation", amount, currency)
            if self._one_statement(
                "create",
                key=idempotency_key,
                hash=_digest(request),
                response=json.dumps(response),
                now=self._now(),
                id=payment_id,
                amount=amount,
                currency=currency,
                reference=reference,
            ):
                return _charge(response["ok"])

        def perform(cursor):
            payment_id = "pi_sim_" + uuid.uuid4().hex[:24]
            self._run(
                cursor,
                "new_charge",
                id=payment_id,
                amount=amount,
                currency=currency,
                reference=reference,
                now=self._now(),
            )
            return _charge_json(payment_id, "requires_confirmation", amount, currency)

        return _charge(self._idempotent(idempotency_key, request, perform))

    def confirm_payment(self, payment_id, *, token, idempotency_key):
        request = {"op": "confirm", "payment_id": payment_id, "token": _token_digest(token)}
        card = TEST_TOKENS.get(token) if isinstance(token, str) else None
        if self.db.is_postgres and card is not None:
            status, decline, declined = _card_outcome(card)
            stored = self._one_statement(
                "confirm",
                key=idempotency_key,
                hash=_digest(request),
                response=None if declined is None else json.dumps(declined),
                now=self._now(),
                id=payment_id,
                status=status,
                brand=card.brand,
                decline=decline,
            )
            if stored is not None:
                return _charge(_answer(json.loads(stored)))

        def perform(cursor):
            row = _charge_row(self._run(cursor, "charge", id=payment_id).fetchone())
            if row is None:
                return _error("invalid_request", "resource_missing", f"No such payment: {payment_id}")
            if row.status in ("succeeded", "canceled"):
                return _error(
                    "invalid_request",
                    "payment_intent_unexpected_state",
                    f"This payment is {row.status}; it cannot be confirmed.",
                )
            card = TEST_TOKENS.get(token)
            if card is None:
                return _error(
                    "invalid_token",
                    "invalid_token",
                    "The card token is not valid. Use one of Stripe's test tokens.",
                )
            status, decline, declined = _card_outcome(card)
            self._run(cursor, "set_charge", id=payment_id, status=status, brand=card.brand, decline=decline)
            if declined is not None:
                return declined
            return _charge_json(payment_id, "succeeded", row.amount, row.currency)

        return _charge(self._idempotent(idempotency_key, request, perform))

    def retrieve_payment(self, payment_id):
        with self._transaction(write=False) as cursor:
            row = _charge_row(self._run(cursor, "charge", id=payment_id).fetchone())
        if row is None:
            raise PaymentError(f"No such payment: {payment_id}", "resource_missing")
        declined = row.decline_code if row.status == "requires_payment_method" else None
        return Charge(
            row.id,
            row.status,
            row.amount,
            row.currency,
            declined,
            DECLINE_MESSAGES.get(declined) if declined else None,
        )

    def cancel_payment(self, payment_id):
        with self._transaction(write=True) as cursor:
            row = _charge_row(self._run(cursor, "charge", id=payment_id).fetchone())
            if row is None:
                raise PaymentError(f"No such payment: {payment_id}", "resource_missing")
            if row.status != "succeeded":
                self._run(cursor, "cancel_charge", id=payment_id)
        return self.retrieve_payment(payment_id)

    # -- refunds -----------------------------------------------------------------
    def refund(self, payment_id, *, amount, idempotency_key, reference):
        request = {"op": "refund", "payment_id": payment_id, "amount": amount, "reference": reference}
        if self.db.is_postgres and isinstance(amount, int) and amount > 0:
            stored = self._one_statement(
                "refund",
                key=idempotency_key,
                hash=_digest(request),
                now=self._now(),
                id="re_sim_" + uuid.uuid4().hex[:24],
                charge_id=payment_id,
                amount=amount,
                reference=reference,
            )
            if stored is not None:
                return GatewayRefund(**json.loads(stored)["ok"])

        def perform(cursor):
            charge = _charge_row(self._run(cursor, "charge", id=payment_id).fetchone())
            if charge is None:
                return _error("refund_failed", "resource_missing", f"No such payment: {payment_id}")
            if charge.status != "succeeded":
                return _error(
                    "refund_failed",
                    "charge_not_succeeded",
                    "This payment did not succeed, so there is nothing to refund.",
                )
            if charge.decline_code == "refund_fail":
                return _error(
                    "refund_failed",
                    "refund_failed",
                    "The card issuer refused the refund (test card refundFail).",
                )
            if not isinstance(amount, int) or amount <= 0:
                return _error("refund_failed", "amount_invalid", "A refund amount must be positive.")
            already = self._run(cursor, "refunded", id=payment_id).fetchone()[0]
            if already + amount > charge.amount:
                return _error(
                    "refund_failed",
                    "charge_already_refunded" if already >= charge.amount else "amount_too_large",
                    f"Refund of {amount} exceeds the {charge.amount - already} left to refund.",
                )
            refund_id = "re_sim_" + uuid.uuid4().hex[:24]
            self._run(
                cursor,
                "new_refund",
                id=refund_id,
                charge_id=payment_id,
                amount=amount,
                currency=charge.currency,
                reference=reference,
                now=self._now(),
            )
            return {
                "ok": {
                    "refund_id": refund_id,
                    "payment_id": payment_id,
                    "amount": amount,
                    "currency": charge.currency,
                    "status": "succeeded",
                    "reference": reference,
                }
            }

        return GatewayRefund(**self._idempotent(idempotency_key, request, perform))

    def list_refunds(self, payment_id):
        with self._transaction(write=False) as cursor:
            rows = self._run(cursor, "refunds", id=payment_id).fetchall()
        return [
            GatewayRefund(refund_id, charge_id, amount, currency, "succeeded", reference)
            for refund_id, charge_id, amount, currency, reference in rows
        ]

    # -- listing a period (reconciliation) ---------------------------------------
    page_size = 1000

    def list_payments(self, *, created_from, created_to):
        """The ledger's charges created in [created_from, created_to), a page at a time."""
        for row in self._pages("charges_page", created_from, created_to):
            payment_id, status, amount, currency, reference, created = row
            yield ListedPayment(payment_id, status, amount, currency, reference or "", _as_datetime(created))

    def list_period_refunds(self, *, created_from, created_to):
        """The ledger's refunds created in [created_from, created_to) (all succeeded)."""
        for row in self._pages("refunds_page", created_from, created_to):
            refund_id, charge_id, amount, currency, reference, _created = row
            yield GatewayRefund(refund_id, charge_id, amount, currency, "succeeded", reference or "")

    def _pages(self, query: str, created_from, created_to) -> Iterator[tuple]:
        """Keyset pages of (created_at, id), each read in its own short transaction."""
        start, end = self._stamp(created_from), self._stamp(created_to)
        after_at, after_id = start, ""
        while True:
            with self._transaction(write=False) as cursor:
                rows = self._run(
                    cursor,
                    query,
                    start=start,
                    end=end,
                    after_at=after_at,
                    after_id=after_id,
                    size=self.page_size,
                ).fetchall()
            yield from rows
            if len(rows) < self.page_size:
                return
            after_at, after_id = rows[-1][-1], rows[-1][0]

    def _stamp(self, moment):
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if self.db.is_sqlite else moment

    # -- money moved outside Orders Desk (demos, tests) ---------------------------
    # What a finance colleague does in the Stripe Dashboard, or a customer's bank: the
    # ledger changes and the caller sends the matching event (stripe_events.simulated).
    def refund_outside(self, payment_id: str, *, amount: int | None = None) -> GatewayRefund:
        """A refund made at the gateway, not by Orders Desk (no refund key of ours)."""
        with self.db.write() as conn:
            charge = conn.execute(select(sim_charges).where(sim_charges.c.id == payment_id)).first()
            if charge is None or charge.status != "succeeded":
                raise RefundFailed(f"No succeeded payment {payment_id} to refund.", "charge_not_succeeded")
            already = int(
                conn.execute(
                    select(func.coalesce(func.sum(sim_refunds.c.amount), 0)).where(
                        sim_refunds.c.charge_id == payment_id
                    )
                ).scalar_one()
            )
            amount = charge.amount - already if amount is None else amount
            if not isinstance(amount, int) or amount <= 0 or already + amount > charge.amount:
                raise RefundFailed(
                    f"Refund of {amount} exceeds the {charge.amount - already} left to refund.",
                    "amount_too_large",
                )
            refund_id = "re_sim_" + uuid.uuid4().hex[:24]
            conn.execute(
                insert(sim_refunds).values(
                    id=refund_id,
                    charge_id=payment_id,
                    amount=amount,
                    currency=charge.currency,
                    reference="",
                    created_at=utcnow(),
                )
            )
        return GatewayRefund(refund_id, payment_id, amount, charge.currency, "succeeded", "")

    def open_dispute(self, payment_id: str, *, reason: str, amount: int | None = None) -> SimulatedDispute:
        """The customer's bank disputes the charge: evidence is due in a week."""
        now = utcnow()
        with self.db.write() as conn:
            charge = conn.execute(select(sim_charges).where(sim_charges.c.id == payment_id)).first()
            if charge is None or charge.status != "succeeded":
                raise PaymentError(f"No succeeded payment {payment_id} to dispute.", "charge_not_succeeded")
            dispute = SimulatedDispute(
                "dp_sim_" + uuid.uuid4().hex[:24],
                payment_id,
                charge.amount if amount is None else amount,
                charge.currency,
                reason,
                "needs_response",
                now + dt.timedelta(days=7),
            )
            conn.execute(
                insert(sim_disputes).values(
                    id=dispute.dispute_id,
                    charge_id=payment_id,
                    amount=dispute.amount,
                    currency=dispute.currency,
                    reason=reason,
                    status=dispute.status,
                    evidence_due_by=dispute.evidence_due_by,
                    created_at=now,
                )
            )
        return dispute

    def set_dispute_status(self, dispute_id: str, status: str) -> SimulatedDispute:
        """The dispute moves on (under_review) or closes (won, lost)."""
        with self.db.write() as conn:
            conn.execute(update(sim_disputes).where(sim_disputes.c.id == dispute_id).values(status=status))
            row = conn.execute(select(sim_disputes).where(sim_disputes.c.id == dispute_id)).first()
        if row is None:
            raise PaymentError(f"No such dispute: {dispute_id}", "resource_missing")
        return SimulatedDispute(
            row.id, row.charge_id, row.amount, row.currency, row.reason, row.status, row.evidence_due_by
        )

    def list_disputes(self, payment_id: str) -> list[SimulatedDispute]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(sim_disputes)
                .where(sim_disputes.c.charge_id == payment_id)
                .order_by(sim_disputes.c.created_at)
            ).all()
        return [
            SimulatedDispute(r.id, r.charge_id, r.amount, r.currency, r.reason, r.status, r.evidence_due_by)
            for r in rows
        ]

    # -- Stripe's idempotency ----------------------------------------------------
    def _idempotent(self, key: str, request: dict, perform) -> dict:
        digest = _digest(request)
        with self._transaction(write=True) as cursor:
            stored = self._run(cursor, "key", key=key).fetchone()
            if stored is not None:
                request_hash, stored_response = stored
                if request_hash != digest:
                    raise PaymentError(
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.",
                        "idempotency_key_in_use",
                    )
                response = json.loads(stored_response)
            else:
                response = perform(cursor)
                self._run(
                    cursor, "new_key", key=key, hash=digest, response=json.dumps(response), now=self._now()
                )
        return _answer(response)


@dataclasses.dataclass(frozen=True)
class SimulatedDispute:
    dispute_id: str
    payment_id: str
    amount: int
    currency: str
    reason: str
    status: str
    evidence_due_by: dt.datetime | None


_ChargeRow = collections.namedtuple("_ChargeRow", "id amount currency status decline_code")


def _charge_row(row) -> _ChargeRow | None:
    return None if row is None else _ChargeRow(*row)


def _as_datetime(value) -> dt.datetime:
    """A ledger timestamp (SQLite gives the text SQLAlchemy wrote) as a naive datetime."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _pyformat(sql: str) -> str:
    """':name' parameters as psycopg's '%(name)s'."""
    import re

    return re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql)


def _card_outcome(card: TestToken) -> tuple[str, str | None, dict | None]:
    """What confirming with test card `card` does to a charge: its status, its
    decline_code column (refund_fail marks a card that refuses refunds) and the decline
    answered, None when the charge succeeds."""
    if card.decline_code:
        declined = _error("card_declined", card.decline_code, DECLINE_MESSAGES[card.decline_code])
        return "requires_payment_method", card.decline_code, declined
    return "succeeded", "refund_fail" if card.refunds_fail else None, None


def _digest(request: dict) -> str:
    """What an idempotency key remembers of its request."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _answer(response: dict) -> dict:
    """A stored response as the call's answer: its result, or its error raised."""
    if "error" in response:
        _raise(response["error"])
    return response["ok"]


def _token_digest(token: str) -> str:
    # The ledger never keeps what the customer typed as a token, only its digest.
    return hashlib.sha256(str(token).encode()).hexdigest()


def _charge_json(payment_id, status, amount, currency):
    return {"ok": {"payment_id": payment_id, "status": status, "amount": amount, "currency": currency}}


def _charge(data: dict) -> Charge:
    return Charge(**data)


def _error(kind: str, code: str, message: str) -> dict:
    return {"error": {"kind": kind, "code": code, "message": message}}


def _raise(error: dict):
    kind, code, message = error["kind"], error["code"], error["message"]
    if kind == "card_declined":
        raise CardDeclined(message, code)
    if kind == "invalid_token":
        raise InvalidToken(message, code)
    if kind == "refund_failed":
        raise RefundFailed(message, code)
    raise PaymentError(message, code)
