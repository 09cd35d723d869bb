"""Entry module for ``celery -A tasks.worker``: builds the Flask app and exposes its Celery."""

from app.cli import fail_on_config_error

with fail_on_config_error():
    from app import create_app
    from tasks.celery_app import celery_init_app

    flask_app = create_app()
    celery = celery_init_app(flask_app)
    celery.autodiscover_tasks(["tasks"], related_name=None, force=True)
