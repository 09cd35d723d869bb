"""Fixtures for the key-value store tests: callers with exactly the grants a test names."""

from __future__ import annotations

import uuid

import pytest

from tests.auth.conftest import client_with, create_role, identity_with  # noqa: F401 - fixtures


@pytest.fixture
def key_name():
    """A fresh key name per call: Vault is not rolled back with the test's transaction."""
    return lambda stem="k": f"{stem}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def vault_down(app):
    """Point the app at an address where nothing listens, as the execute tests do."""
    from app.services import vault

    saved = app.config["VAULT_ADDR"]
    app.config["VAULT_ADDR"] = "http://127.0.0.1:9"
    vault._clients.clear()
    yield
    app.config["VAULT_ADDR"] = saved
    vault._clients.clear()


@pytest.fixture
def in_vault(app):
    """in_vault("keys/system/x") -> the stored data under VAULT_PREFIX, or None."""
    from app.services import vault

    def read(path: str):
        with app.app_context():
            return vault.read_secret(path)

    return read
