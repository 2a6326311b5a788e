"""job items: what kind of failure each one had, and an index for the job's item list

- job_items.failure_kind: why a failed item failed, as a kind the retry rule reads
  (orders_core/job_failures.py): gateway_unavailable, in_progress, stale, gave_up are
  worth a retry; illegal_move, permission, declined, refund_failed, not_found, invalid
  are not. NULL for items that did not fail (and for failures recorded before 0011,
  which "Retry failed" treats as worth a retry, as it did).
- ix_job_items_job_seq: the job page lists every item of a job in selection order,
  a page at a time, whatever its outcome.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure_kind", sa.String(length=32), nullable=True))
    op.create_index("ix_job_items_job_seq", "job_items", ["job_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_job_items_job_seq", table_name="job_items")
    with op.batch_alter_table("job_items", schema=None) as batch_op:
        batch_op.drop_column("failure_kind")
