"""One blueprint per resource, registered here."""

from __future__ import annotations

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    from app.api import (
        actions,
        apikeys,
        audit,
        auth,
        enforcements,
        events,
        executions,
        health,
        identities,
        inquiries,
        keys,
        pack_registration,
        packs,
        roles,
        rules,
        sensors,
        triggers,
        webhooks,
    )

    for module in (health, actions, packs, pack_registration, triggers, sensors, rules, auth, apikeys, identities, roles, audit, executions, webhooks,
                   events, enforcements, keys, inquiries):
        api.register_blueprint(module.blp)
