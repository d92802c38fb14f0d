"""Alembic environment for the application tables, driven programmatically by ``migrate.py``.

``migrate.py`` opens the connection (and, on PostgreSQL, takes the migration lock) and hands it
over in ``config.attributes["connection"]``; there is no ``alembic.ini`` and no offline mode.
"""

from __future__ import annotations

from alembic import context

from chaingraph_executor.backends.sql.migrate import VERSION_TABLE
from chaingraph_executor.backends.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through chaingraph_executor.backends.sql.migrate")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
