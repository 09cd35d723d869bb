"""Celery tasks. Task modules use ``shared_task`` and never import the Flask app."""
