"""Alembic environment for the store (engine/store.py): online migrations on one connection.

The URL: ``-x url=...``, else the ``sqlalchemy.url`` a caller set on the Config (the tests), else
``DATABASE_URL``, else the embedded SQLite file. A PostgreSQL URL may carry
``options=-csearch_path=<schema>``: the tables and ``alembic_version`` then live in that schema.
"""
from __future__ import annotations

from alembic import context
import sqlalchemy as sa

from engine.store import application_metadata, default_url

config = context.config
target_metadata = application_metadata()


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url") or default_url()


def run_migrations_online() -> None:
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
