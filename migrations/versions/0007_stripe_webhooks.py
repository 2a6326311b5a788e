"""Stripe webhooks: the event inbox, disputes, refunds made outside Orders Desk

- stripe_events: every verified Stripe event, once by its id (the inbox), with what
  the worker did with it (outcome, the matched order or none, an error).
- stripe_object_versions: the `created` of the newest event applied to each Stripe
  object, so an older event that arrives later changes nothing.
- disputes: an order's disputes (reason, amount, status, evidence deadline).
- refunds.origin: 'desk' (ours) or 'external' (made in the Stripe Dashboard).
- orders.needs_attention / attention_reason: money moved at the gateway without us.
- sim_disputes: the simulated gateway's disputes (offline demos of a chargeback).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: SQLite's batch mode would rebuild the orders
    # table, and with it migration 0005's and 0006's triggers.
    op.add_column(
        "orders", sa.Column("needs_attention", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("orders", sa.Column("attention_reason", sa.Text(), nullable=True))
    op.add_column("refunds", sa.Column("origin", sa.String(length=16), nullable=False, server_default="desk"))

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("event_created", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("retry_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_stripe_events_pending", "stripe_events", ["processed_at", "event_created"])
    op.create_index("ix_stripe_events_outcome", "stripe_events", ["outcome", "received_at"])
    op.create_index("ix_stripe_events_order", "stripe_events", ["order_id"])

    op.create_table(
        "stripe_object_versions",
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("last_event_created", sa.BigInteger(), nullable=False),
        sa.Column("last_event_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("object_id"),
    )

    op.create_table(
        "disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gateway_dispute_id", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("gateway", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("evidence_due_by", sa.DateTime(), nullable=True),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gateway_dispute_id"),
    )
    op.create_index("ix_disputes_order_id", "disputes", ["order_id"])

    op.create_table(
        "sim_disputes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("charge_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("evidence_due_by", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["charge_id"], ["sim_charges.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sim_disputes_charge_id", "sim_disputes", ["charge_id"])


def downgrade() -> None:
    op.drop_index("ix_sim_disputes_charge_id", table_name="sim_disputes")
    op.drop_table("sim_disputes")
    op.drop_index("ix_disputes_order_id", table_name="disputes")
    op.drop_table("disputes")
    op.drop_table("stripe_object_versions")
    for name in ("ix_stripe_events_order", "ix_stripe_events_outcome", "ix_stripe_events_pending"):
        op.drop_index(name, table_name="stripe_events")
    op.drop_table("stripe_events")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): the orders table and its triggers stay.
    op.drop_column("refunds", "origin")
    op.drop_column("orders", "attention_reason")
    op.drop_column("orders", "needs_attention")
