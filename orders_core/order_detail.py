"""The order detail read model: one order with its items, payment attempts, refunds and
timeline, as typed, frozen objects. `queries.read_order` builds it; `as_dict()` is the
shape `python -m orders_core show --json` prints (kept as it was when the detail was
a dict: times as ISO strings with a Z, enums as their values)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from .addresses import PostalAddress
from .refund_rules import refundable_amount
from .status import PaymentStatus, RefundAction, RefundStatus, Status
from .timeline import EventKind


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


@dataclasses.dataclass(frozen=True)
class Customer:
    id: int | None
    email: str
    name: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "name": self.name}


@dataclasses.dataclass(frozen=True)
class OrderItem:
    sku: str
    name: str
    product: str
    quantity: int
    unit_amount: int
    amount: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PaymentAttempt:
    id: int
    gateway: str
    gateway_payment_id: str | None
    amount: int
    currency: str
    status: PaymentStatus
    failure_code: str | None
    failure_message: str | None
    created_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "gateway": self.gateway,
            "gateway_payment_id": self.gateway_payment_id,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status.value,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "created_at": iso(self.created_at),
        }


@dataclasses.dataclass(frozen=True)
class Refund:
    id: int
    amount: int
    currency: str
    status: RefundStatus
    gateway: str
    gateway_refund_id: str | None
    action: RefundAction  # the move that refunded (cancel, return), or external
    actor: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status.value,
            "gateway": self.gateway,
            "gateway_refund_id": self.gateway_refund_id,
            "action": self.action.value,
            "actor": self.actor,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "created_at": iso(self.created_at),
        }


@dataclasses.dataclass(frozen=True)
class OrderEvent:
    at: dt.datetime
    actor: str
    kind: EventKind  # printed as "action", the column's name
    from_status: Status | None
    to_status: Status | None
    note: str
    job_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.kind.value,
            "from_status": self.from_status.value if self.from_status else None,
            "to_status": self.to_status.value if self.to_status else None,
            "note": self.note,
            "job_id": self.job_id,
        }


@dataclasses.dataclass(frozen=True)
class OrderDetail:
    number: str
    status: Status
    customer: Customer
    items: tuple[OrderItem, ...]
    total_amount: int
    currency: str
    refunded_amount: int
    shipping_address: PostalAddress | None
    created_at: dt.datetime
    paid_at: dt.datetime | None
    fulfilled_at: dt.datetime | None
    canceled_at: dt.datetime | None
    returned_at: dt.datetime | None
    payment: PaymentAttempt | None  # the successful attempt, else the latest one
    payment_attempts: tuple[PaymentAttempt, ...]
    refunds: tuple[Refund, ...]
    events: tuple[OrderEvent, ...]

    @property
    def payment_in_flight(self) -> bool:
        """The latest charge attempt is still pending at the gateway."""
        return bool(self.payment_attempts) and self.payment_attempts[-1].status == PaymentStatus.PENDING

    @property
    def paid_amount(self) -> int:
        payment = self.payment
        return payment.amount if payment and payment.status == PaymentStatus.SUCCEEDED else 0

    @property
    def refundable(self) -> int:
        """What a refunding move would hand back (the services compute it again)."""
        return refundable_amount(self.total_amount, self.refunded_amount, paid=self.paid_amount)

    @property
    def fully_refunded(self) -> bool:
        """Everything that was paid has gone back to the card."""
        return self.paid_amount > 0 and self.refunded_amount >= self.paid_amount

    @property
    def quantity(self) -> int:
        return sum(item.quantity for item in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "status": self.status.value,
            "customer": self.customer.as_dict(),
            "items": [i.as_dict() for i in self.items],
            "total_amount": self.total_amount,
            "currency": self.currency,
            "refunded_amount": self.refunded_amount,
            "shipping_address": self.shipping_address.as_dict() if self.shipping_address else None,
            "created_at": iso(self.created_at),
            "paid_at": iso(self.paid_at),
            "fulfilled_at": iso(self.fulfilled_at),
            "canceled_at": iso(self.canceled_at),
            "returned_at": iso(self.returned_at),
            "payment": self.payment.as_dict() if self.payment else None,
            "payment_attempts": [p.as_dict() for p in self.payment_attempts],
            "refunds": [r.as_dict() for r in self.refunds],
            "events": [e.as_dict() for e in self.events],
        }
