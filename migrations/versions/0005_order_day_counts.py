"""orders: a per-day, per-status, per-currency count kept by the database itself

order_day_counts(day, status, currency, orders) answers the tab counts and totals of
unfiltered and date-only views without counting the orders table (at a million
orders that count walked a million index entries per tab).

It is kept by triggers on `orders`, inside the same transaction as the change, so it
is correct by construction for every write path (checkout, single and bulk moves, the
seed, the CLI, anything to come): SQLite with row triggers; PostgreSQL with
statement-level triggers over the statement's transition tables (one grouped upsert
per statement, not one per row). The upserts touch count rows in (day, status,
currency) order, so two writers never wait for each other in opposite orders.
`python -m orders_core counts --check` / `--rebuild` compares it with (or rebuilds it
from) the orders table.

Existing databases are filled from their orders here.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SQLITE_DAY = "substr({row}.created_at, 1, 10)"  # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff'

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER orders_day_counts_insert AFTER INSERT ON orders BEGIN
          INSERT INTO order_day_counts (day, status, currency, orders)
          VALUES ({SQLITE_DAY.format(row="new")}, new.status, new.currency, 1)
          ON CONFLICT (day, status, currency) DO UPDATE SET orders = orders + 1;
        END""",
    f"""CREATE TRIGGER orders_day_counts_update
        AFTER UPDATE OF status, created_at, currency ON orders
        WHEN old.status IS NOT new.status OR old.created_at IS NOT new.created_at
             OR old.currency IS NOT new.currency BEGIN
          UPDATE order_day_counts SET orders = orders - 1
          WHERE day = {SQLITE_DAY.format(row="old")} AND status = old.status
            AND currency = old.currency;
          INSERT INTO order_day_counts (day, status, currency, orders)
          VALUES ({SQLITE_DAY.format(row="new")}, new.status, new.currency, 1)
          ON CONFLICT (day, status, currency) DO UPDATE SET orders = orders + 1;
        END""",
    f"""CREATE TRIGGER orders_day_counts_delete AFTER DELETE ON orders BEGIN
          UPDATE order_day_counts SET orders = orders - 1
          WHERE day = {SQLITE_DAY.format(row="old")} AND status = old.status
            AND currency = old.currency;
        END""",
]

# One function for the three statement triggers: the net change per (day, status,
# currency) of the statement, applied in key order. Transition tables a trigger does
# not have are empty sets here.
POSTGRES_FUNCTION = """
CREATE FUNCTION orders_day_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO order_day_counts (day, status, currency, orders)
    SELECT created_at::date, status, currency, count(*) FROM new_rows
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, status, currency)
    DO UPDATE SET orders = order_day_counts.orders + EXCLUDED.orders;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO order_day_counts (day, status, currency, orders)
    SELECT day, status, currency, sum(change) FROM (
        SELECT n.created_at::date AS day, n.status, n.currency, 1 AS change
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (o.status, o.created_at, o.currency) IS DISTINCT FROM (n.status, n.created_at, n.currency)
        UNION ALL
        SELECT o.created_at::date, o.status, o.currency, -1
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (o.status, o.created_at, o.currency) IS DISTINCT FROM (n.status, n.created_at, n.currency)
    ) AS moves GROUP BY 1, 2, 3 HAVING sum(change) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (day, status, currency)
    DO UPDATE SET orders = order_day_counts.orders + EXCLUDED.orders;
  ELSE
    INSERT INTO order_day_counts (day, status, currency, orders)
    SELECT created_at::date, status, currency, -count(*) FROM old_rows
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, status, currency)
    DO UPDATE SET orders = order_day_counts.orders + EXCLUDED.orders;
  END IF;
  RETURN NULL;
END $$"""

POSTGRES_TRIGGERS = [
    """CREATE TRIGGER orders_day_counts_insert AFTER INSERT ON orders
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
       EXECUTE FUNCTION orders_day_counts_apply()""",
    """CREATE TRIGGER orders_day_counts_update AFTER UPDATE ON orders
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
       EXECUTE FUNCTION orders_day_counts_apply()""",
    """CREATE TRIGGER orders_day_counts_delete AFTER DELETE ON orders
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
       EXECUTE FUNCTION orders_day_counts_apply()""",
]


def upgrade() -> None:
    op.create_table(
        "order_day_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "status", "currency"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "created_at::date" if postgres else SQLITE_DAY.format(row="orders")
    op.execute(
        f"INSERT INTO order_day_counts (day, status, currency, orders) "
        f"SELECT {day}, status, currency, count(*) FROM orders GROUP BY 1, 2, 3"
    )
    if postgres:
        op.execute(POSTGRES_FUNCTION)
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    for name in ("orders_day_counts_insert", "orders_day_counts_update", "orders_day_counts_delete"):
        op.execute(
            f"DROP TRIGGER IF EXISTS {name}"
            + (" ON orders" if op.get_bind().dialect.name == "postgresql" else "")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS orders_day_counts_apply()")
    op.drop_table("order_day_counts")
