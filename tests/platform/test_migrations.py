"""The Alembic history builds the schema the models describe, and unwinds completely."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import app.models  # noqa: F401
from app.db import Base
from app.migrate import downgrade, upgrade


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_creates_every_model_table(scratch_database):
    upgrade(scratch_database)
    assert table_names(scratch_database) == set(Base.metadata.tables) | {"alembic_version"}


def test_models_and_migrations_agree(scratch_database):
    upgrade(scratch_database)
    engine = create_engine(scratch_database)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == [], f"models differ from migrations; generate a migration: {diff}"


def test_downgrade_base_removes_everything_and_upgrade_again_works(scratch_database):
    upgrade(scratch_database)
    downgrade(scratch_database, "base")
    assert table_names(scratch_database) == {"alembic_version"}
    upgrade(scratch_database)
    assert "executions" in table_names(scratch_database)


def test_constraint_names_follow_the_convention(scratch_database):
    upgrade(scratch_database)
    engine = create_engine(scratch_database)
    inspector = inspect(engine)
    foreign_keys = [fk["name"] for fk in inspector.get_foreign_keys("rules")]
    engine.dispose()
    assert "fk_rules_action_id_actions" in foreign_keys
    assert "fk_rules_trigger_id_triggers" in foreign_keys
