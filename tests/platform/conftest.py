"""Platform test fixtures: an empty database of its own, dropped afterwards."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url


@pytest.fixture
def scratch_database(database_url_for_tests, request):
    """The URL of a new, empty database named after the test module; dropped at the end."""
    url = make_url(database_url_for_tests)
    name = f"{url.database}_{request.module.__name__.rsplit('_', 1)[-1]}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
