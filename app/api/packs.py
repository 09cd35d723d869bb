"""Packs: bundles of actions, triggers, sensors and rules."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, content_sort_columns, paginate
from app.db import db
from app.engine.search import like_pattern
from app.models import Action, Pack, Rule, Sensor, Trigger
from app.schemas.action import ActionSchema
from app.schemas.common import ContentListWithEnabledArgs, ListArgs
from app.schemas.pack import PackConfigSchema, PackSchema, PackUpdateSchema
from app.schemas.rule import RuleSchema
from app.schemas.sensor import SensorSchema
from app.schemas.trigger import TriggerSchema
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission
from app.services import packs as service
from app.services.content import filter_content

# POST /api/v1/packs/register lives in app.api.pack_registration; no POST on /packs/<name> here.
blp = Blueprint("packs", __name__, url_prefix="/api/v1/packs", description="Packs: bundles of automation content")

SORTABLE = {"name": Pack.name, "created_at": Pack.created_at, "updated_at": Pack.updated_at}


@blp.route("")
class Packs(MethodView):
    @requires("packs:view")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, PackSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List packs

        Filters: `q` (name contains); `sort` by name, created_at or updated_at.
        """
        query = select(Pack)
        if args.get("q"):
            query = query.where(Pack.name.ilike(like_pattern(args["q"]), escape="\\"))
        visible = current_principal().packs_for("packs:view")
        if visible is not None:
            query = query.where(Pack.name.in_(sorted(visible)))
        query = apply_sort(query, args.get("sort"), SORTABLE, "name", Pack.id)
        return paginate(query, pagination_parameters)

    @requires("packs:create", pack_from=None)
    @blp.arguments(PackSchema)
    @blp.response(201, PackSchema)
    @blp.alt_response(409, description="A pack with this name exists")
    def post(self, data):
        """Create a pack"""
        ensure_pack_permission("packs:create", data["name"])
        pack = service.create_pack(data)
        db.session.commit()
        return pack


@blp.route("/<name>")
class PackByName(MethodView):
    @requires("packs:view", pack_from="name")
    @blp.response(200, PackSchema)
    @blp.alt_response(404, description="No such pack")
    def get(self, name):
        """Get a pack by name"""
        return service.get_pack(name)

    @requires("packs:update", pack_from="name")
    @blp.arguments(PackUpdateSchema)
    @blp.response(200, PackSchema)
    def patch(self, data, name):
        """Change some fields of a pack"""
        pack = service.update_pack(service.get_pack(name), data)
        db.session.commit()
        return pack

    @requires("packs:delete", pack_from="name")
    @blp.response(204)
    @blp.alt_response(409, description="Rules or sensors of other packs use this pack's content")
    def delete(self, name):
        """Delete a pack and all its content

        Its actions, triggers, sensors and rules go with it; 409 while rules or sensors of
        other packs use its triggers or actions.
        """
        service.delete_pack(service.get_pack(name))
        db.session.commit()


@blp.route("/<name>/config")
class PackConfig(MethodView):
    @requires("packs:view", pack_from="name")
    @blp.response(200, PackConfigSchema)
    @blp.alt_response(404, description="No such pack")
    def get(self, name):
        """Get a pack's configuration (secret values as `********`)"""
        pack = service.get_pack(name)
        return {"pack": pack.name, "config": pack.config or {}}

    @requires("packs:update", pack_from="name")
    @blp.arguments(PackConfigSchema)
    @blp.response(200, PackConfigSchema)
    @blp.alt_response(404, description="No such pack")
    @blp.alt_response(422, description="The config does not match the pack's config schema")
    def put(self, data, name):
        """Replace a pack's configuration

        Checked against the pack's `config_schema`; values declared `secret: true` go to Vault
        and read back as `********` (sending `********` back keeps the stored value).
        """
        pack = service.update_pack(service.get_pack(name), {"config": data["config"]})
        db.session.commit()
        return {"pack": pack.name, "config": pack.config or {}}


def _content(model: type, name: str, args: dict[str, Any], pagination_parameters: Any) -> list[Any]:
    """One page of a pack's content (the route's permission already covers this pack)."""
    service.get_pack(name)
    query = filter_content(select(model), model, {**args, "pack": name}, None)
    columns = {k: v for k, v in content_sort_columns(model).items() if k != "pack"}  # one pack here
    query = apply_sort(query, args.get("sort"), columns, "ref", model.id)  # type: ignore[attr-defined]
    return paginate(query, pagination_parameters)


class PackContentArgs(ContentListWithEnabledArgs):
    class Meta:
        exclude = ("pack",)


@blp.route("/<name>/actions")
class PackActions(MethodView):
    @requires("actions:view", pack_from="name")
    @blp.arguments(PackContentArgs, location="query")
    @blp.response(200, ActionSchema(many=True))
    @blp.paginate()
    def get(self, args, name, pagination_parameters):
        """List a pack's actions"""
        return _content(Action, name, args, pagination_parameters)


@blp.route("/<name>/triggers")
class PackTriggers(MethodView):
    @requires("triggers:view", pack_from="name")
    @blp.arguments(PackContentArgs, location="query")
    @blp.response(200, TriggerSchema(many=True))
    @blp.paginate()
    def get(self, args, name, pagination_parameters):
        """List a pack's trigger types"""
        return _content(Trigger, name, args, pagination_parameters)


@blp.route("/<name>/sensors")
class PackSensors(MethodView):
    @requires("sensors:view", pack_from="name")
    @blp.arguments(PackContentArgs, location="query")
    @blp.response(200, SensorSchema(many=True))
    @blp.paginate()
    def get(self, args, name, pagination_parameters):
        """List a pack's sensors"""
        return _content(Sensor, name, args, pagination_parameters)


@blp.route("/<name>/rules")
class PackRules(MethodView):
    @requires("rules:view", pack_from="name")
    @blp.arguments(PackContentArgs, location="query")
    @blp.response(200, RuleSchema(many=True))
    @blp.paginate()
    def get(self, args, name, pagination_parameters):
        """List a pack's rules"""
        return _content(Rule, name, args, pagination_parameters)
