"""Packs: lookup, create, change, and delete with everything in them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import array

from app.db import db
from app.engine.parameters import (
    instance_errors,
    is_json_schema,
    json_schema_errors,
    schema_errors,
    value_errors,
)
from app.errors import Conflict, NotFound, ValidationError
from app.models import Action, Pack, Rule, Sensor, Trigger
from app.services import pack_config, unit_of_work
from app.services.content import assign, check_storable

FIELDS = ("version", "description", "author", "email", "keywords", "config_schema", "config")


def get_pack(name: str) -> Pack:
    pack = find_pack(name)
    if pack is None:
        raise NotFound(f"Pack {name!r} does not exist.")
    return pack


def find_pack(name: str) -> Pack | None:
    if "\x00" in name:  # PostgreSQL text cannot hold NUL; no pack is named so
        return None
    return db.session.scalar(select(Pack).where(Pack.name == name))


def validate_config(config_schema: dict[str, Any], config: dict[str, Any]) -> None:
    """422 when the config schema is not valid or a (non-empty) config does not match it.

    Two forms are accepted: StackStorm's ``config.schema.yaml`` (``{key: {type, required,
    default, secret, ...}}``, as pack registration stores it) and a whole JSON Schema object.
    An empty config means "not configured yet": creating a pack must not need its secrets.
    Config values may be templates (``{{ kv.system.token }}``) rendered when an action runs.
    """
    if is_json_schema(config_schema):
        problems: Any = json_schema_errors(config_schema)
    else:
        problems = schema_errors(config_schema)
    if problems:
        raise ValidationError("The pack's config_schema is not valid.", {"config_schema": problems})
    if not config:
        return
    if is_json_schema(config_schema):
        problems = instance_errors(config_schema, config, allow_templates=True)
    else:
        problems = value_errors(config_schema, config, allow_templates=True)
    if problems:
        raise ValidationError("The pack's config does not match its config_schema.", {"config": problems})


def create_pack(data: dict[str, Any]) -> Pack:
    check_storable(data)
    if find_pack(data["name"]) is not None:
        raise Conflict(f"Pack {data['name']!r} already exists.", {"name": [f"{data['name']!r} is taken."]})
    schema, config = data.get("config_schema", {}), data.get("config", {})
    validate_config(schema, pack_config.real_config(None, schema, config))
    pack = Pack(name=data["name"])
    assign(pack, {**data, "config": {}}, FIELDS)
    db.session.add(pack)
    db.session.flush()
    # Secret values to Vault (undone on rollback); PostgreSQL keeps them masked.
    pack.config = pack_config.store(pack, schema, config, new=True)
    db.session.flush()
    return pack


def update_pack(pack: Pack, data: dict[str, Any]) -> Pack:
    check_storable(data)
    data = dict(data)
    config_schema = data.get("config_schema", pack.config_schema)
    # A client that read the pack sends masked secrets back unchanged: the stored values stay.
    config = data.get("config", pack.config or {})
    validate_config(config_schema, pack_config.real_config(pack, config_schema, config))
    data["config"] = pack_config.store(pack, config_schema, config)
    assign(pack, data, FIELDS)
    db.session.flush()
    return pack


def outside_dependents(pack: Pack) -> dict[str, list[str]]:
    """Rules and sensors of other packs that use this pack's triggers or actions."""
    triggers = select(Trigger.id).where(Trigger.pack_id == pack.id)
    actions = select(Action.id).where(Action.pack_id == pack.id)
    rules = db.session.scalars(
        select(Rule.ref).where(Rule.pack_id != pack.id, or_(Rule.trigger_id.in_(triggers), Rule.action_id.in_(actions)))
        .order_by(Rule.ref).limit(50)
    ).all()
    trigger_refs = list(db.session.scalars(select(Trigger.ref).where(Trigger.pack_id == pack.id)))
    sensors = db.session.scalars(
        select(Sensor.ref).where(Sensor.pack_id != pack.id, Sensor.trigger_types.has_any(array(trigger_refs)))
        .order_by(Sensor.ref).limit(50)
    ).all() if trigger_refs else []
    found = {"rules": list(rules), "sensors": list(sensors)}
    return {kind: refs for kind, refs in found.items() if refs}


def delete_pack(pack: Pack) -> None:
    """Delete the pack and (by the foreign keys' cascade) its actions, triggers, sensors, rules."""
    dependents = outside_dependents(pack)
    if dependents:
        names = ", ".join(ref for refs in dependents.values() for ref in refs)
        raise Conflict(f"Pack {pack.name!r} is used by content of other packs: {names}.", dependents)
    # The pack's own rules go first: rules.action_id/trigger_id are RESTRICT, so the delete
    # must not depend on the order in which PostgreSQL runs the cascades from packs.
    db.session.execute(delete(Rule).where(Rule.pack_id == pack.id))
    db.session.delete(pack)
    db.session.flush()
    unit_of_work.after_commit(pack_config.forget, pack.name)
