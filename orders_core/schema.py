"""The tables, as SQLAlchemy 2.x typed models. Money columns are integers in minor
units; timestamps are naive UTC. Services mostly use these through Core
(`Order.__table__`) so that work on many rows stays set-based."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    shippable: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Sku(Base):
    __tablename__ = "skus"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased email: uniqueness is case-insensitive on every database.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class StaffMember(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # A temporary password set by an admin must be replaced at the next sign-in.
    password_must_change: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is
    stored, so a copy of this table signs nobody in (migration 0004)."""

    __tablename__ = "staff_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    method: Mapped[str] = mapped_column(String(32))  # password, or sso:<provider>
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime)
    idle_expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    client_address: Mapped[str] = mapped_column(String(64), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_staff_sessions_staff", "staff_id", "revoked_at"),)


class StaffAuditEntry(Base):
    """Who signed in or out, failed to, or changed an account: the staff audit log."""

    __tablename__ = "staff_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    event: Mapped[str] = mapped_column(String(32))
    # Who acted (an admin, the person themselves, "system"), and whose account it was
    # about, lower-cased: for a failed sign-in, the email as typed (it may not exist).
    actor: Mapped[str] = mapped_column(String(320))
    subject_key: Mapped[str] = mapped_column(String(320))
    success: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    client_address: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        Index("ix_staff_audit_subject_at", "subject_key", "at"),
        Index("ix_staff_audit_at", "at"),
    )


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # Snapshots at purchase time: the order list filters and searches one table.
    customer_email: Mapped[str] = mapped_column(String(320))
    customer_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    ship_name: Mapped[str | None] = mapped_column(String(200))
    ship_line1: Mapped[str | None] = mapped_column(String(200))
    ship_line2: Mapped[str | None] = mapped_column(String(200))
    ship_city: Mapped[str | None] = mapped_column(String(100))
    ship_region: Mapped[str | None] = mapped_column(String(100))
    ship_postal_code: Mapped[str | None] = mapped_column(String(20))
    ship_country: Mapped[str | None] = mapped_column(String(2))
    checkout_key: Mapped[str | None] = mapped_column(String(128))
    checkout_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    fulfilled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    canceled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    returned_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Set when money moved at the gateway without us (a refund made in the Stripe
    # Dashboard): a person should look (migration 0007).
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    attention_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("customer_id", "checkout_key", name="uq_orders_checkout_key"),
        # Covering for the tab counts under dates and amounts (migration 0003).
        Index("ix_orders_status_created_total", "status", "created_at", "total_amount"),
        Index("ix_orders_created", "created_at"),
        Index("ix_orders_total", "total_amount"),
        # Covering for counts under a currency and its totals (migration 0009).
        Index("ix_orders_currency_status_total", "currency", "status", "total_amount", "created_at"),
        Index("ix_orders_customer_created", "customer_id", "created_at"),
        Index("ix_orders_customer_email", "customer_email"),
    )


class OrderDayCount(Base):
    """Orders per creation day, status and currency, kept by triggers on `orders` in the
    same transaction as every change (migration 0005): the tab counts never count rows."""

    __tablename__ = "order_day_counts"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger)


class OrderSku(Base):
    """Each order's SKUs (one row per order and SKU) with the order's status, creation
    time, total and currency, kept by triggers on `orders` and `order_items` in the same transaction as every
    change (migration 0013): a SKU (+ status, + dates) view is one range of its key."""

    __tablename__ = "order_skus"
    sku_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The order's, so that amounts and a currency narrow the same range (PostgreSQL: INCLUDE).
    total_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))

    __table_args__ = {"sqlite_with_rowid": False}


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    sku_code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    product_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_order_items_sku_order", "sku_id", "order_id"),)


class OrderEvent(Base):
    """The order's timeline: every change, who made it, when and why."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_order_events_order", "order_id", "id"),)


class Payment(Base):
    """One charge attempt at the gateway, success or failure. A pending row is
    committed before the gateway is called, so a crash leaves a trace to resolve."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(16))
    gateway_payment_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # pending, succeeded, failed
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (  # a period's payments, a gateway's payment ids (migration 0008)
        Index("ix_payments_created", "created_at"),
        Index("ix_payments_gateway_payment_id", "gateway_payment_id"),
    )


class Refund(Base):
    """One refund attempt. Pending is committed before the gateway call; its key is
    reused by every retry, and the gateway is asked first what it already did."""

    __tablename__ = "refunds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    gateway: Mapped[str] = mapped_column(String(16))
    gateway_refund_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # pending, succeeded, failed
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    action: Mapped[str] = mapped_column(String(16))  # cancel or return
    actor: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    job_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # 'desk': made by Orders Desk; 'external': made at the gateway without us (the
    # Stripe Dashboard), learnt from its webhook (migration 0007).
    origin: Mapped[str] = mapped_column(String(16), default="desk", server_default="desk")

    __table_args__ = (  # a period's refunds, a gateway's refund ids (migration 0008)
        Index("ix_refunds_created", "created_at"),
        Index("ix_refunds_gateway_refund_id", "gateway_refund_id"),
    )


class StripeEvent(Base):
    """The webhook inbox: each Stripe event stored once by its id, as it came; a worker
    applies it later and records what it did (migration 0007)."""

    __tablename__ = "stripe_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    event_created: Mapped[int] = mapped_column(BigInteger)  # Stripe's `created`, Unix seconds
    object_id: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # stripe (the webhook) or simulated
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # applied, no_change, stale, unmatched, ignored, failed
    outcome: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(Integer)  # the matched order; None: unmatched
    detail: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A worker's claim on the event, and when a deferred event may be tried again.
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    retry_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_stripe_events_pending", "processed_at", "event_created"),
        Index("ix_stripe_events_outcome", "outcome", "received_at"),
        Index("ix_stripe_events_order", "order_id"),
    )


class StripeObjectVersion(Base):
    """The `created` of the newest event applied to each Stripe object (a dispute, a
    refund, a payment): an older event arriving later changes nothing."""

    __tablename__ = "stripe_object_versions"
    object_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_event_created: Mapped[int] = mapped_column(BigInteger)
    last_event_id: Mapped[str] = mapped_column(String(255))


class Dispute(Base):
    """A customer's dispute of an order's charge (a chargeback), as the gateway reports it."""

    __tablename__ = "disputes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    gateway: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Stripe's: warning_needs_response, warning_under_review, warning_closed,
    # needs_response, under_review, won, lost
    status: Mapped[str] = mapped_column(String(32))
    evidence_due_by: Mapped[dt.datetime | None] = mapped_column(DateTime)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


# The simulated gateway's own ledger: it plays the part of Stripe's books, so it is
# written in its own transactions, never inside ours.
class SimCharge(Base):
    __tablename__ = "sim_charges"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))  # requires_confirmation, succeeded, failed
    card_brand: Mapped[str | None] = mapped_column(String(32))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_sim_charges_created", "created_at"),)  # migration 0008


class SimRefund(Base):
    __tablename__ = "sim_refunds"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    charge_id: Mapped[str] = mapped_column(ForeignKey("sim_charges.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_sim_refunds_created", "created_at"),)  # migration 0008


class SimDispute(Base):
    """A dispute the simulated gateway was told to open (a demo of a chargeback)."""

    __tablename__ = "sim_disputes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    charge_id: Mapped[str] = mapped_column(ForeignKey("sim_charges.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    evidence_due_by: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class SimIdempotencyKey(Base):
    __tablename__ = "sim_idempotency_keys"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Job(Base):
    """A mass action: durable, re-read on every page load, run by workers
    (orders_core/jobs.py asks for it, orders_core/job_engine/ runs it)."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # export, fulfill, cancel, return
    # queued, running, completed, completed_with_failures, failed, canceled
    status: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320))
    # The role checked when the job was asked for, which it acts with ("system" for
    # the operator's CLI).
    actor_role: Mapped[str | None] = mapped_column(String(16))
    selection: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    total: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The job lease: the worker running the job and until when (renewed while alive).
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    retry_of: Mapped[int | None] = mapped_column(Integer)
    export_path: Mapped[str | None] = mapped_column(Text)
    export_rows: Mapped[int | None] = mapped_column(BigInteger)
    export_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    # An export of a filtered selection (migration 0012): its filters as JSON and the
    # highest order id when it was asked for, instead of one job item per order.
    selection_filters: Mapped[str | None] = mapped_column(Text)
    selection_max_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)


class JobItem(Base):
    """One order of a job, frozen when the job was asked for."""

    __tablename__ = "job_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key on purpose (migration 0002): a million items are frozen in one
    # INSERT ... SELECT, always in the job's own transaction, and PostgreSQL would
    # check the key row by row.
    job_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int] = mapped_column(Integer)
    order_number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # pending, succeeded, failed
    reason: Mapped[str | None] = mapped_column(Text)
    # The worker that claimed the item last, how many claims so far, and until when
    # the current claim holds; a pending item whose lease ran out is claimable again.
    worker: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # A failed item's kind of failure (orders_core/job_failures.py): whether a retry can help.
    failure_kind: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("job_id", "order_id", name="uq_job_items_order"),
        Index("ix_job_items_job_status_seq", "job_id", "status", "seq"),
        Index("ix_job_items_job_seq", "job_id", "seq"),
    )


class ReconciliationRun(Base):
    """One reconciliation report of our payments and refunds against the gateway's for
    a period of days (UTC): a `reconcile` job's (job_id) or the CLI's (migration 0008)."""

    __tablename__ = "reconciliation_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    gateway: Mapped[str] = mapped_column(String(16))
    period_from: Mapped[dt.date] = mapped_column(Date)
    period_to: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # running, completed, failed
    stage: Mapped[str] = mapped_column(String(200))  # what it is doing now, for the page
    progress: Mapped[float] = mapped_column(Float)  # 0..1, by stage
    actor: Mapped[str] = mapped_column(String(320))
    payments_checked: Mapped[int] = mapped_column(Integer)
    refunds_checked: Mapped[int] = mapped_column(Integer)
    gateway_charges: Mapped[int] = mapped_column(Integer)
    gateway_refunds: Mapped[int] = mapped_column(Integer)
    orders_checked: Mapped[int] = mapped_column(Integer)
    mismatches: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("job_id", name="uq_reconciliation_runs_job"),)


class ReconciliationMismatch(Base):
    """One row of a reconciliation report: where our books and the gateway's disagree."""

    __tablename__ = "reconciliation_mismatches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    order_number: Mapped[str | None] = mapped_column(String(32))
    gateway_id: Mapped[str | None] = mapped_column(String(255))
    ours_amount: Mapped[int | None] = mapped_column(BigInteger)
    ours_currency: Mapped[str | None] = mapped_column(String(3))
    ours_status: Mapped[str | None] = mapped_column(String(32))
    theirs_amount: Mapped[int | None] = mapped_column(BigInteger)
    theirs_currency: Mapped[str | None] = mapped_column(String(3))
    theirs_status: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_reconciliation_mismatches_run", "run_id", "seq"),)


class SavedView(Base):
    """A named view of the orders list: its URL parameters (filters, tab, sort) and
    columns, kept for its owner, or published to every staff member (migration 0010)."""

    __tablename__ = "saved_views"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    name: Mapped[str] = mapped_column(String(60))
    name_key: Mapped[str] = mapped_column(String(60))  # lower-cased: duplicates are case-blind
    params: Mapped[str] = mapped_column(Text)  # JSON object of the list's query parameters
    columns: Mapped[str | None] = mapped_column(Text)  # JSON list of column ids, or none
    team: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("owner_staff_id", "name_key", name="uq_saved_views_owner_name"),
        Index("ix_saved_views_team", "team"),
    )


class StaffListPrefs(Base):
    """One staff member's choices on the orders list: its columns (shown, in order) and
    their default saved view (migration 0010)."""

    __tablename__ = "staff_list_prefs"
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    columns: Mapped[str | None] = mapped_column(Text)  # JSON list of column ids, or none
    default_view_id: Mapped[int | None] = mapped_column(ForeignKey("saved_views.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


def _table_of(model: type[Base]) -> Table:
    """The model's Table, typed as one (a declarative `__table__` is a FromClause to mypy)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


orders = _table_of(Order)
order_items = _table_of(OrderItem)
order_day_counts = _table_of(OrderDayCount)
order_skus = _table_of(OrderSku)
order_events = _table_of(OrderEvent)
payments = _table_of(Payment)
refunds = _table_of(Refund)
products = _table_of(Product)
skus = _table_of(Sku)
customers = _table_of(Customer)
addresses = _table_of(Address)
staff = _table_of(StaffMember)
staff_sessions = _table_of(StaffSession)
staff_audit = _table_of(StaffAuditEntry)
jobs = _table_of(Job)
job_items = _table_of(JobItem)
sim_charges = _table_of(SimCharge)
sim_refunds = _table_of(SimRefund)
sim_idempotency_keys = _table_of(SimIdempotencyKey)
reconciliation_runs = _table_of(ReconciliationRun)
reconciliation_mismatches = _table_of(ReconciliationMismatch)
sim_disputes = _table_of(SimDispute)
stripe_events = _table_of(StripeEvent)
stripe_object_versions = _table_of(StripeObjectVersion)
disputes = _table_of(Dispute)
saved_views = _table_of(SavedView)
staff_list_prefs = _table_of(StaffListPrefs)
