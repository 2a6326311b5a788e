"""orders list: saved views and each staff member's column choices

- saved_views: a named view of the orders list (its URL query parameters as JSON, and
  optionally its columns), owned by a staff member; `team` views (published by an admin)
  are listed for everyone. Names are unique per owner, case-blind (name_key).
- staff_list_prefs: one row per staff member: the list's columns (shown, in order) and
  their default saved view (set to NULL when that view is deleted).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_staff_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("name_key", sa.String(length=60), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("columns", sa.Text(), nullable=True),
        sa.Column("team", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_staff_id", "name_key", name="uq_saved_views_owner_name"),
    )
    op.create_index("ix_saved_views_team", "saved_views", ["team"], unique=False)
    op.create_table(
        "staff_list_prefs",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("columns", sa.Text(), nullable=True),
        sa.Column("default_view_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["default_view_id"], ["saved_views.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("staff_id"),
    )


def downgrade() -> None:
    op.drop_table("staff_list_prefs")
    op.drop_index("ix_saved_views_team", table_name="saved_views")
    op.drop_table("saved_views")
