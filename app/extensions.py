"""Shared clients, created once per process and configured by create_app()."""

from __future__ import annotations

import functools

import redis
from flask import current_app
from flask_jwt_extended import JWTManager

jwt = JWTManager()


@functools.cache
def redis_for(url: str) -> redis.Redis:
    """One client (and connection pool) per Redis URL per process."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)


def redis_client() -> redis.Redis:
    return redis_for(current_app.config["REDIS_URL"])
