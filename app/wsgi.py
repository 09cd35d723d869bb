"""WSGI entry point for gunicorn: ``gunicorn app.wsgi:app``."""

from app.cli import fail_on_config_error

with fail_on_config_error():
    from app import create_app

    app = create_app()
