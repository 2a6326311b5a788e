"""orders: indexes for the orders page at a million orders

- ix_orders_status_created (status, created_at) becomes
  ix_orders_status_created_total (status, created_at, total_amount): the tab counts
  (one COUNT(*) per status under a date range and an amount range) read this index
  alone, never the table. Still the only index with status in it, so a status move
  updates as many index entries as before.
- ix_orders_total (total_amount): a page sorted by total, or narrowed by an amount
  alone, comes from the index; a status move never touches it.

Measured with bench/ (python -m bench.run --only queries) at 1,000,000 orders.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:30:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_orders_status_created_total", "orders", ["status", "created_at", "total_amount"], unique=False
    )
    op.drop_index("ix_orders_status_created", table_name="orders")
    op.create_index("ix_orders_total", "orders", ["total_amount"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_orders_total", table_name="orders")
    op.create_index("ix_orders_status_created", "orders", ["status", "created_at"], unique=False)
    op.drop_index("ix_orders_status_created_total", table_name="orders")
