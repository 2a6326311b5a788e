"""Alembic environment: runs on the connection orders_core.db.migrate hands it,
or on ORDERS_DATABASE_URL when called from the alembic command line."""

from alembic import context
from sqlalchemy import create_engine

from orders_core.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    from orders_core.config import load_settings

    engine = create_engine(load_settings().database_url)
    with engine.begin() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, render_as_batch=conn.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
