"""Alembic environment: runs against the engine the caller hands over (see chunfeng.db.Database)."""

from alembic import context

from chunfeng.models import Base  # noqa: F401  (imports every domain's tables)

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
