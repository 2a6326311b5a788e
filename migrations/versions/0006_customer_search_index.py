"""orders: a trigram index for customer search (part of an email, a domain, part of a name)

- SQLite: orders_search, an FTS5 table with the trigram tokenizer over the orders'
  customer_email and customer_name (external content: it stores only the index),
  kept current by triggers on every insert, delete and change of those columns.
- PostgreSQL: pg_trgm GIN indexes on lower(customer_email) and lower(customer_name),
  which the list's `lower(...) LIKE '%text%'` uses as it is.

The search's answers do not change: the index finds candidates (a case-folded superset)
and the same LIKE as before decides (orders_core.queries._search_condition).
Measured with bench/experiments/search_fts.py at 1,000,000 orders.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:15:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQLITE = [
    """CREATE VIRTUAL TABLE orders_search USING fts5(
         customer_email, customer_name, content='orders', content_rowid='id',
         tokenize='trigram case_sensitive 0')""",
    "INSERT INTO orders_search (orders_search) VALUES ('rebuild')",
    """CREATE TRIGGER orders_search_insert AFTER INSERT ON orders BEGIN
         INSERT INTO orders_search (rowid, customer_email, customer_name)
         VALUES (new.id, new.customer_email, new.customer_name);
       END""",
    """CREATE TRIGGER orders_search_delete AFTER DELETE ON orders BEGIN
         INSERT INTO orders_search (orders_search, rowid, customer_email, customer_name)
         VALUES ('delete', old.id, old.customer_email, old.customer_name);
       END""",
    """CREATE TRIGGER orders_search_update AFTER UPDATE OF customer_email, customer_name ON orders
       BEGIN
         INSERT INTO orders_search (orders_search, rowid, customer_email, customer_name)
         VALUES ('delete', old.id, old.customer_email, old.customer_name);
         INSERT INTO orders_search (rowid, customer_email, customer_name)
         VALUES (new.id, new.customer_email, new.customer_name);
       END""",
]

POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_orders_email_trgm ON orders USING gin (lower(customer_email) gin_trgm_ops)",
    "CREATE INDEX ix_orders_name_trgm ON orders USING gin (lower(customer_name) gin_trgm_ops)",
]


def upgrade() -> None:
    for statement in POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_orders_name_trgm")
        op.execute("DROP INDEX IF EXISTS ix_orders_email_trgm")
        return
    for name in ("orders_search_insert", "orders_search_delete", "orders_search_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS orders_search")
