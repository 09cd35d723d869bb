"""WSGI entry point for gunicorn: ``gunicorn app.wsgi:app``."""

from app.cli import fail_on_config_error

# gunicorn loads the app in each worker and boots a new worker whenever one exits, forever,
# unless the exit status is its APP_LOAD_ERROR (4): then the master stops too.
GUNICORN_APP_LOAD_ERROR = 4

with fail_on_config_error(GUNICORN_APP_LOAD_ERROR):
    from app import create_app

    app = create_app()
