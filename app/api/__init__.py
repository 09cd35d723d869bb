"""One blueprint per resource, registered here."""

from __future__ import annotations

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    from app.api import actions, health

    for module in (health, actions):
        api.register_blueprint(module.blp)
