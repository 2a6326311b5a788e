"""jobs: who asked (role) and why; job items: attempts and a lease per claim, no
per-row foreign key

- jobs.actor_role: the role checked when the job was asked for, which it acts with.
- jobs.reason: why (kept in each order's timeline and refund), optional.
- job_items.attempts, job_items.lease_expires_at: how many times a worker claimed the
  item, and until when the current claim holds (renewed while the worker lives).
- job_items.job_id loses its foreign key to jobs: freezing a selection is one
  INSERT ... SELECT of up to a million rows, and PostgreSQL checks a foreign key row
  by row (70% of the time at 300,000 rows). Items are only ever written in the same
  transaction as their job, and jobs are never deleted.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite's foreign key from 0001 has no name; batch mode needs one to drop it.
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_FK = "fk_job_items_job_id_jobs"
POSTGRES_FK = "job_items_job_id_fkey"  # PostgreSQL's own name for 0001's constraint


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_role", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))

    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.drop_constraint(POSTGRES_FK, "job_items", type_="foreignkey")
    with op.batch_alter_table(
        "job_items", schema=None, naming_convention=None if postgres else SQLITE_NAMES
    ) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(), nullable=True))
        if not postgres:
            batch_op.drop_constraint(SQLITE_FK, type_="foreignkey")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("job_items", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("attempts")
        batch_op.create_foreign_key(POSTGRES_FK if postgres else SQLITE_FK, "jobs", ["job_id"], ["id"])

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("actor_role")
