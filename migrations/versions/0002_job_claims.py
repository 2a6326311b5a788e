"""jobs: who asked (role) and why; job items: attempts and a lease per claimed chunk

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        # The role the job acts with: the one checked when it was asked for.
        batch_op.add_column(sa.Column('actor_role', sa.String(length=16), nullable=True))
        # Why (kept in each order's timeline and refund), optional.
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=False, server_default=''))

    with op.batch_alter_table('job_items', schema=None) as batch_op:
        # Claims: how many times a worker took the item, and until when the current
        # claim holds (renewed while the worker is alive).
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job_items', schema=None) as batch_op:
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('attempts')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('reason')
        batch_op.drop_column('actor_role')
