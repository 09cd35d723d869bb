"""Events: post one (the rules engine takes it from there), list and read them."""

from __future__ import annotations

from flask.views import MethodView

from app.api.common import Blueprint, apply_sort, paginate
from app.db import db
from app.engine.trigger_aliases import PLATFORM_TRIGGERS, canonical_trigger_ref
from app.errors import ValidationError
from app.models import Event
from app.schemas.event import (
    EventCreatedSchema,
    EventCreateSchema,
    EventDetailSchema,
    EventListArgs,
    EventSchema,
)
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission, pack_of
from app.services import enforcements, rules_engine
from app.services import events as service

blp = Blueprint("events", __name__, url_prefix="/api/v1/events",
                description="Events: triggers that fired, and what the rules made of them")

# Only columns that lead an index (alone or after an equality filter) are sortable.
SORTABLE = {"created_at": Event.created_at, "id": Event.id}


@blp.route("")
class Events(MethodView):
    @requires("events:create", pack_from=None)
    @blp.arguments(EventCreateSchema)
    @blp.response(202, EventCreatedSchema)
    @blp.alt_response(404, description="No such trigger type")
    def post(self, data):
        """Post an event

        Needs `events:create` on the trigger's pack. The payload is checked against the
        trigger type's payload schema. The rules on its trigger are evaluated before the answer,
        in the transaction that records the event: the answer's `status` is `processed` (or
        `failed`, with the reason on the event), and the executions it requested are queued.
        """
        trigger = canonical_trigger_ref(data["trigger"])
        ensure_pack_permission("events:create", pack_of(trigger) or "")
        if trigger in PLATFORM_TRIGGERS:
            raise ValidationError(f"Events of {trigger} come only from Patchbay itself (webhooks, timers, "
                                  "executions); they cannot be posted.", {"trigger": ["Not postable."]})
        event = rules_engine.receive(data["trigger"], data["payload"], source="api")
        db.session.commit()
        return event

    @requires("events:view", pack_from=None)
    @blp.arguments(EventListArgs, location="query")
    @blp.response(200, EventSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List events

        Filters: `trigger` (ref), `source`, `status`, `since`, `until` (created_at); `sort`
        by created_at or id (default `-created_at`).
        """
        query = service.filtered(args, current_principal().packs_for("events:view"))
        query = apply_sort(query, args.get("sort"), SORTABLE, "-created_at", Event.id)
        return paginate(query, pagination_parameters)


@blp.route("/<int:event_id>")
class EventById(MethodView):
    @requires("events:view", pack_from=None)
    @blp.response(200, EventDetailSchema)
    @blp.alt_response(404, description="No such event (or it was purged)")
    def get(self, event_id):
        """Get an event with its enforcements"""
        event = service.get_event(event_id)
        ensure_pack_permission("events:view", event.pack_name)
        event.enforcements = enforcements.of_event(event)
        return event
