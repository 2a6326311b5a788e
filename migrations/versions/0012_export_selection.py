"""jobs: an export of a filtered selection is frozen as its filters and an id bound

An export job no longer needs one job item per order: `selection_filters` (the
OrderFilters as JSON) and `selection_max_id` (the highest order id when it was asked
for) say which orders it writes (orders_core/export_selection.py). Listed selections
keep their job items; both columns are NULL for them and for move jobs.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 11:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("selection_filters", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("selection_max_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("selection_max_id")
        batch_op.drop_column("selection_filters")
