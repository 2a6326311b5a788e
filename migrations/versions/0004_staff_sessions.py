"""staff: server-side sessions, an audit log, temporary passwords

- staff_sessions: one row per signed-in browser. The cookie carries a random token;
  the row keeps only its SHA-256 (token_hash), who it belongs to, when it was made and
  last seen, its idle and absolute expiry, the browser and address, and when and why it
  was revoked. Every script run and every HTTP route looks the token up again.
- staff_audit: sign-ins (successful or not), sign-outs, revocations, role changes,
  deactivations and password changes: who, when, what, from which address. The
  sign-in throttle counts failures here per account and address.
- staff.password_must_change / password_changed_at: an admin's temporary password is
  replaced at the next sign-in.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("password_must_change", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("password_changed_at", sa.DateTime(), nullable=True))

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("idle_expires_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("user_agent", sa.String(length=400), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_staff_sessions_staff", "staff_sessions", ["staff_id", "revoked_at"], unique=False)

    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("subject_key", sa.String(length=320), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_staff_audit_subject_at", "staff_audit", ["subject_key", "at"], unique=False)
    op.create_index("ix_staff_audit_at", "staff_audit", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_staff_audit_at", table_name="staff_audit")
    op.drop_index("ix_staff_audit_subject_at", table_name="staff_audit")
    op.drop_table("staff_audit")
    op.drop_index("ix_staff_sessions_staff", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("password_must_change")
