"""order_skus: each order's SKUs with the order's status and creation time, kept by the database

order_skus(sku_id, status, created_at, order_id; total_amount, currency), one row per
order and SKU it lists (an order listing a SKU on two lines is one row), keyed in that
order: a SKU view, a SKU + status view and a SKU + status + dates view are one range of
its key, counted or paged without visiting the orders, and the order's total and
currency ride along (on PostgreSQL in the key's index, INCLUDE) so that amounts narrow
the same range (at a million orders the SKU + status views probed every order of the
SKU, or of the status, one by one: 180-190 ms on PostgreSQL).

Kept by triggers, inside the same transaction as the change, like order_day_counts
(migration 0005), so it is correct by construction for every write path (checkout,
single and bulk moves, the seed, the CLI): items inserted (or deleted, or moved) add
(or remove) their (order, SKU) row; an order whose status, creation time, total or
currency changes carries its rows along. SQLite with row triggers;
PostgreSQL with statement-level triggers over the statement's transition tables (one
set-based statement per statement, not one per row).
`python -m orders_core counts --check` / `--rebuild` compares it with (or rebuilds it
from) the orders and their items.

Existing databases are filled from their orders here.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The kept rows are found by their whole key (the order's SKUs from ix_order_items_order_id,
# its old status and creation time from the order): no second index on order_skus, so a
# status move rewrites one index entry per row. An order's rows go with its items (the
# foreign key keeps an order with items from being deleted).
SQLITE_TRIGGERS = [
    """CREATE TRIGGER order_skus_item_insert AFTER INSERT ON order_items BEGIN
          INSERT INTO order_skus (sku_id, status, created_at, order_id, total_amount, currency)
          SELECT new.sku_id, status, created_at, id, total_amount, currency
          FROM orders WHERE id = new.order_id
          ON CONFLICT DO NOTHING;
        END""",
    """CREATE TRIGGER order_skus_item_update AFTER UPDATE OF order_id, sku_id ON order_items
        WHEN old.order_id IS NOT new.order_id OR old.sku_id IS NOT new.sku_id BEGIN
          DELETE FROM order_skus WHERE sku_id = old.sku_id AND order_id = old.order_id
            AND status = (SELECT status FROM orders WHERE id = old.order_id)
            AND created_at = (SELECT created_at FROM orders WHERE id = old.order_id)
            AND NOT EXISTS (SELECT 1 FROM order_items
                            WHERE order_id = old.order_id AND sku_id = old.sku_id);
          INSERT INTO order_skus (sku_id, status, created_at, order_id, total_amount, currency)
          SELECT new.sku_id, status, created_at, id, total_amount, currency
          FROM orders WHERE id = new.order_id
          ON CONFLICT DO NOTHING;
        END""",
    """CREATE TRIGGER order_skus_item_delete AFTER DELETE ON order_items BEGIN
          DELETE FROM order_skus WHERE sku_id = old.sku_id AND order_id = old.order_id
            AND status = (SELECT status FROM orders WHERE id = old.order_id)
            AND created_at = (SELECT created_at FROM orders WHERE id = old.order_id)
            AND NOT EXISTS (SELECT 1 FROM order_items
                            WHERE order_id = old.order_id AND sku_id = old.sku_id);
        END""",
    """CREATE TRIGGER order_skus_order_update
        AFTER UPDATE OF status, created_at, total_amount, currency ON orders
        WHEN old.status IS NOT new.status OR old.created_at IS NOT new.created_at
             OR old.total_amount IS NOT new.total_amount OR old.currency IS NOT new.currency BEGIN
          UPDATE order_skus SET status = new.status, created_at = new.created_at,
                                total_amount = new.total_amount, currency = new.currency
          WHERE sku_id IN (SELECT sku_id FROM order_items WHERE order_id = new.id)
            AND status = old.status AND created_at = old.created_at AND order_id = old.id;
        END""",
]

# Transition tables a trigger does not have are never read (each branch reads its own).
POSTGRES_FUNCTIONS = [
    """
CREATE FUNCTION order_skus_follow_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM order_skus k
    USING (SELECT DISTINCT order_id, sku_id FROM old_rows) d JOIN orders o ON o.id = d.order_id
    WHERE k.sku_id = d.sku_id AND k.status = o.status AND k.created_at = o.created_at
      AND k.order_id = d.order_id
      AND NOT EXISTS (SELECT 1 FROM order_items i
                      WHERE i.order_id = d.order_id AND i.sku_id = d.sku_id);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO order_skus (sku_id, status, created_at, order_id, total_amount, currency)
    SELECT DISTINCT n.sku_id, o.status, o.created_at, o.id, o.total_amount, o.currency
    FROM new_rows n JOIN orders o ON o.id = n.order_id
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION order_skus_follow_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- The new values read from the orders themselves (by primary key), where this statement
  -- left them: joining the two transition tables, which have no statistics, was planned
  -- as a nested loop over both (0.7 s for a chunk of 500 orders at a million).
  UPDATE order_skus k SET status = n.status, created_at = n.created_at,
                          total_amount = n.total_amount, currency = n.currency
  FROM old_rows o JOIN orders n ON n.id = o.id JOIN order_items i ON i.order_id = o.id
  WHERE (o.status, o.created_at, o.total_amount, o.currency)
        IS DISTINCT FROM (n.status, n.created_at, n.total_amount, n.currency)
    AND k.sku_id = i.sku_id AND k.status = o.status AND k.created_at = o.created_at
    AND k.order_id = o.id;
  RETURN NULL;
END $$""",
]

POSTGRES_TRIGGERS = [
    """CREATE TRIGGER order_skus_item_insert AFTER INSERT ON order_items
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
       EXECUTE FUNCTION order_skus_follow_items()""",
    """CREATE TRIGGER order_skus_item_update AFTER UPDATE ON order_items
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
       EXECUTE FUNCTION order_skus_follow_items()""",
    """CREATE TRIGGER order_skus_item_delete AFTER DELETE ON order_items
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
       EXECUTE FUNCTION order_skus_follow_items()""",
    """CREATE TRIGGER order_skus_order_update AFTER UPDATE ON orders
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
       EXECUTE FUNCTION order_skus_follow_orders()""",
]

TRIGGERS = {
    "order_skus_item_insert": "order_items",
    "order_skus_item_update": "order_items",
    "order_skus_item_delete": "order_items",
    "order_skus_order_update": "orders",
}

BACKFILL = """INSERT INTO order_skus (sku_id, status, created_at, order_id, total_amount, currency)
SELECT DISTINCT i.sku_id, o.status, o.created_at, o.id, o.total_amount, o.currency
FROM order_items i JOIN orders o ON o.id = i.order_id"""
KEY = "sku_id, status, created_at, order_id"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    columns = [
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("total_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
    ]
    if postgres:  # the key's index carries the amounts, for index-only scans
        op.create_table("order_skus", *columns)
        op.execute(
            f"ALTER TABLE order_skus ADD CONSTRAINT pk_order_skus PRIMARY KEY ({KEY}) "
            "INCLUDE (total_amount, currency)"
        )
    else:  # WITHOUT ROWID: the table is its key's b-tree, amounts included
        op.create_table(
            "order_skus", *columns, sa.PrimaryKeyConstraint(*KEY.split(", ")), sqlite_with_rowid=False
        )
    op.execute(BACKFILL)
    if postgres:
        for statement in POSTGRES_FUNCTIONS + POSTGRES_TRIGGERS:
            op.execute(statement)
        op.execute("ANALYZE order_skus")
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS order_skus_follow_items()")
        op.execute("DROP FUNCTION IF EXISTS order_skus_follow_orders()")
    op.drop_table("order_skus")
