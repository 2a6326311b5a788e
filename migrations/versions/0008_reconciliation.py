"""reconciliation: stored reports, and the indexes that read a period of payments

reconciliation_runs: one report of our payments and refunds against the gateway's for
a period [period_from, period_to] (days, UTC), asked for as a `reconcile` job (job_id)
or from the CLI (no job): its stage while it runs, what it read, when it finished.
reconciliation_mismatches: its rows (kind, order number, gateway id, ours, theirs,
detail); money as minor units plus currency.

The indexes let a reconciliation read one period of payments and refunds (created_at)
and look a gateway's ids up (gateway_payment_id, gateway_refund_id) without walking
the tables; the simulated gateway's ledger gets the same for its listing.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = [
    ("payments", "ix_payments_created", ["created_at"]),
    ("payments", "ix_payments_gateway_payment_id", ["gateway_payment_id"]),
    ("refunds", "ix_refunds_created", ["created_at"]),
    ("refunds", "ix_refunds_gateway_refund_id", ["gateway_refund_id"]),
    ("sim_charges", "ix_sim_charges_created", ["created_at"]),
    ("sim_refunds", "ix_sim_refunds_created", ["created_at"]),
]


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("gateway", sa.String(length=16), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("payments_checked", sa.Integer(), nullable=False),
        sa.Column("refunds_checked", sa.Integer(), nullable=False),
        sa.Column("gateway_charges", sa.Integer(), nullable=False),
        sa.Column("gateway_refunds", sa.Integer(), nullable=False),
        sa.Column("orders_checked", sa.Integer(), nullable=False),
        sa.Column("mismatches", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", name="uq_reconciliation_runs_job"),
    )
    op.create_table(
        "reconciliation_mismatches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("order_number", sa.String(length=32), nullable=True),
        sa.Column("gateway_id", sa.String(length=255), nullable=True),
        sa.Column("ours_amount", sa.BigInteger(), nullable=True),
        sa.Column("ours_currency", sa.String(length=3), nullable=True),
        sa.Column("ours_status", sa.String(length=32), nullable=True),
        sa.Column("theirs_amount", sa.BigInteger(), nullable=True),
        sa.Column("theirs_currency", sa.String(length=3), nullable=True),
        sa.Column("theirs_status", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["reconciliation_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reconciliation_mismatches", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_mismatches_run", ["run_id", "seq"], unique=False)
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    with op.batch_alter_table("reconciliation_mismatches", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_mismatches_run")
    op.drop_table("reconciliation_mismatches")
    op.drop_table("reconciliation_runs")
