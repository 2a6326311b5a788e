"""The offline gateway (the default): Stripe's test-mode behaviour with its own
ledger in our database, so the app runs on a fresh machine with no keys.

It plays the part of a remote system: each call runs in its own transaction and
commits before it answers, exactly as Stripe's books would change before a
response reaches us. Idempotency keys behave as Stripe's do: the same key with the
same request replays the first answer (errors included); with a different request
it is an error.
"""
from __future__ import annotations

import hashlib
import json
import uuid

from sqlalchemy import func, insert, select, update

from ..clock import utcnow
from ..db import Database
from ..schema import sim_charges, sim_idempotency_keys, sim_refunds
from .base import CardDeclined, Charge, GatewayRefund, InvalidToken, PaymentError, RefundFailed
from .card_tokens import DECLINE_MESSAGES, TEST_TOKENS


class SimulatedGateway:
    name = "simulated"

    def __init__(self, db: Database):
        self.db = db

    # -- charges -----------------------------------------------------------------
    def create_payment(self, *, amount, currency, reference, idempotency_key):
        request = {"op": "create", "amount": amount, "currency": currency, "reference": reference}

        def perform(conn):
            payment_id = "pi_sim_" + uuid.uuid4().hex[:24]
            conn.execute(insert(sim_charges).values(
                id=payment_id, amount=amount, currency=currency,
                status="requires_confirmation", reference=reference, created_at=utcnow()))
            return _charge_json(payment_id, "requires_confirmation", amount, currency)

        return _charge(self._idempotent(idempotency_key, request, perform))

    def confirm_payment(self, payment_id, *, token, idempotency_key):
        request = {"op": "confirm", "payment_id": payment_id, "token": _token_digest(token)}

        def perform(conn):
            row = conn.execute(select(sim_charges).where(sim_charges.c.id == payment_id)).one_or_none()
            if row is None:
                return _error("invalid_request", "resource_missing", f"No such payment: {payment_id}")
            if row.status == "succeeded":
                return _error("invalid_request", "payment_intent_unexpected_state",
                              "This payment has already succeeded.")
            card = TEST_TOKENS.get(token)
            if card is None:
                return _error("invalid_token", "invalid_token",
                              "The card token is not valid. Use one of Stripe's test tokens.")
            if card.decline_code:
                conn.execute(update(sim_charges).where(sim_charges.c.id == payment_id).values(
                    status="requires_payment_method", card_brand=card.brand,
                    decline_code=card.decline_code))
                return _error("card_declined", card.decline_code, DECLINE_MESSAGES[card.decline_code])
            conn.execute(update(sim_charges).where(sim_charges.c.id == payment_id).values(
                status="succeeded", card_brand=card.brand,
                decline_code="refund_fail" if card.refunds_fail else None))
            return _charge_json(payment_id, "succeeded", row.amount, row.currency)

        return _charge(self._idempotent(idempotency_key, request, perform))

    def retrieve_payment(self, payment_id):
        with self.db.read() as conn:
            row = conn.execute(select(sim_charges).where(sim_charges.c.id == payment_id)).one_or_none()
        if row is None:
            raise PaymentError(f"No such payment: {payment_id}", "resource_missing")
        declined = row.decline_code if row.status == "requires_payment_method" else None
        return Charge(row.id, row.status, row.amount, row.currency, declined,
                      DECLINE_MESSAGES.get(declined) if declined else None)

    # -- refunds -----------------------------------------------------------------
    def refund(self, payment_id, *, amount, idempotency_key, reference):
        request = {"op": "refund", "payment_id": payment_id, "amount": amount, "reference": reference}

        def perform(conn):
            charge = conn.execute(select(sim_charges).where(sim_charges.c.id == payment_id)).one_or_none()
            if charge is None:
                return _error("refund_failed", "resource_missing", f"No such payment: {payment_id}")
            if charge.status != "succeeded":
                return _error("refund_failed", "charge_not_succeeded",
                              "This payment did not succeed, so there is nothing to refund.")
            if charge.decline_code == "refund_fail":
                return _error("refund_failed", "refund_failed",
                              "The card issuer refused the refund (test card refundFail).")
            if not isinstance(amount, int) or amount <= 0:
                return _error("refund_failed", "amount_invalid", "A refund amount must be positive.")
            already = conn.execute(select(func.coalesce(func.sum(sim_refunds.c.amount), 0))
                                   .where(sim_refunds.c.charge_id == payment_id)).scalar_one()
            if already + amount > charge.amount:
                return _error("refund_failed", "charge_already_refunded" if already >= charge.amount
                              else "amount_too_large",
                              f"Refund of {amount} exceeds the {charge.amount - already} left to refund.")
            refund_id = "re_sim_" + uuid.uuid4().hex[:24]
            conn.execute(insert(sim_refunds).values(
                id=refund_id, charge_id=payment_id, amount=amount, currency=charge.currency,
                reference=reference, created_at=utcnow()))
            return {"ok": {"refund_id": refund_id, "payment_id": payment_id, "amount": amount,
                           "currency": charge.currency, "status": "succeeded", "reference": reference}}

        return GatewayRefund(**self._idempotent(idempotency_key, request, perform))

    def list_refunds(self, payment_id):
        with self.db.read() as conn:
            rows = conn.execute(select(sim_refunds).where(sim_refunds.c.charge_id == payment_id)
                                .order_by(sim_refunds.c.created_at)).all()
        return [GatewayRefund(r.id, r.charge_id, r.amount, r.currency, "succeeded", r.reference)
                for r in rows]

    # -- Stripe's idempotency ----------------------------------------------------
    def _idempotent(self, key: str, request: dict, perform) -> dict:
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        with self.db.write() as conn:
            stored = conn.execute(select(sim_idempotency_keys)
                                  .where(sim_idempotency_keys.c.key == key)).one_or_none()
            if stored is not None:
                if stored.request_hash != digest:
                    raise PaymentError(
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.", "idempotency_key_in_use")
                response = json.loads(stored.response)
            else:
                response = perform(conn)
                conn.execute(insert(sim_idempotency_keys).values(
                    key=key, request_hash=digest, response=json.dumps(response), created_at=utcnow()))
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
