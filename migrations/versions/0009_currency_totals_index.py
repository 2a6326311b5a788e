"""orders: an index for totals in one currency

A total filter is in one currency's own units (issue 11), so the counts under a total
filter by currency too. ix_orders_currency_status_total (currency, status,
total_amount, created_at) answers the tab counts and the list's total of such a view
from the index alone (with a date range too); without it every order in the amount
range was looked up for its currency.

Measured at 1,000,000 orders on SQLite (a shared, loaded machine): "total ≥ $50.00"
(list page, total, tab counts) 7.1 s without it, 0.3 s with it; the same view in any
currency took 0.2–0.3 s before. A status move rewrites one more index entry.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:10:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_orders_currency_status_total",
        "orders",
        ["currency", "status", "total_amount", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_orders_currency_status_total", table_name="orders")
