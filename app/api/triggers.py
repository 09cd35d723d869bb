"""Trigger types: the kinds of events rules can react to."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, content_sort_columns, paginate
from app.api.rule_lists import related_rules
from app.db import db
from app.models import Rule, Trigger
from app.schemas.common import ContentListArgs, ContentListWithEnabledArgs
from app.schemas.rule import RuleSchema
from app.schemas.trigger import TriggerSchema, TriggerUpdateSchema
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission
from app.services import triggers as service
from app.services.content import filter_content

blp = Blueprint("triggers", __name__, url_prefix="/api/v1/triggers", description="Trigger types: kinds of events")

SORTABLE = content_sort_columns(Trigger)


@blp.route("")
class Triggers(MethodView):
    @requires("triggers:view")
    @blp.arguments(ContentListArgs, location="query")
    @blp.response(200, TriggerSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List trigger types

        Filters: `pack`, `q` (name contains); `sort` by ref, name, pack, created_at or updated_at.
        """
        query = filter_content(select(Trigger), Trigger, args, current_principal().packs_for("triggers:view"))
        query = apply_sort(query, args.get("sort"), SORTABLE, "ref", Trigger.id)
        return paginate(query, pagination_parameters)

    @requires("triggers:create", pack_from=None)
    @blp.arguments(TriggerSchema)
    @blp.response(201, TriggerSchema)
    @blp.alt_response(409, description="A trigger with this ref exists")
    def post(self, data):
        """Create a trigger type"""
        ensure_pack_permission("triggers:create", data["pack_name"])
        trigger = service.create_trigger(data)
        db.session.commit()
        return trigger


@blp.route("/<ref>")
class TriggerByRef(MethodView):
    @requires("triggers:view")
    @blp.response(200, TriggerSchema)
    @blp.alt_response(404, description="No such trigger")
    def get(self, ref):
        """Get a trigger type by ref"""
        return service.get_trigger(ref)

    @requires("triggers:update")
    @blp.arguments(TriggerUpdateSchema)
    @blp.response(200, TriggerSchema)
    def patch(self, data, ref):
        """Change some fields of a trigger type"""
        trigger = service.update_trigger(service.get_trigger(ref), data)
        db.session.commit()
        return trigger

    @requires("triggers:delete")
    @blp.response(204)
    @blp.alt_response(409, description="Rules or sensors still use this trigger")
    def delete(self, ref):
        """Delete a trigger type (409 while rules or sensors use it)"""
        service.delete_trigger(service.get_trigger(ref))
        db.session.commit()


@blp.route("/<ref>/rules")
class TriggerRules(MethodView):
    # Rules of any pack may use this trigger; the list shows those the caller may view.
    @requires("triggers:view")
    @blp.arguments(ContentListWithEnabledArgs, location="query")
    @blp.response(200, RuleSchema(many=True))
    @blp.paginate()
    def get(self, args, ref, pagination_parameters):
        """List the rules on this trigger

        Only the rules the caller may view (`rules:view`, on their packs) are listed.
        Filters: `pack`, `enabled`, `q` (name contains); `sort` by ref, name, pack, created_at
        or updated_at.
        """
        trigger = service.get_trigger(ref)
        return related_rules(Rule.trigger_id == trigger.id, args, pagination_parameters)
