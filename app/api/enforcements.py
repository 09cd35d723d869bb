"""Enforcements: which rule matched which event, and the execution it requested."""

from __future__ import annotations

from flask.views import MethodView

from app.api.common import Blueprint, apply_sort, paginate
from app.models import Enforcement
from app.schemas.event import EnforcementDetailSchema, EnforcementListArgs, EnforcementSchema
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission
from app.services import enforcements as service

blp = Blueprint("enforcements", __name__, url_prefix="/api/v1/enforcements",
                description="Enforcements: a rule matched an event")

SORTABLE = {"created_at": Enforcement.created_at, "id": Enforcement.id}


@blp.route("")
class Enforcements(MethodView):
    @requires("events:view", pack_from=None)
    @blp.arguments(EnforcementListArgs, location="query")
    @blp.response(200, EnforcementSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List enforcements

        Filters: `rule` (ref), `event` (id), `status`, `since`, `until` (created_at); `sort`
        by created_at or id (default `-created_at`). Visible on the rule's pack.
        """
        query = service.filtered(args, current_principal().packs_for("events:view"))
        query = apply_sort(query, args.get("sort"), SORTABLE, "-created_at", Enforcement.id)
        return paginate(query, pagination_parameters)


@blp.route("/<int:enforcement_id>")
class EnforcementById(MethodView):
    @requires("events:view", pack_from=None)
    @blp.response(200, EnforcementDetailSchema)
    @blp.alt_response(404, description="No such enforcement (or it was purged)")
    def get(self, enforcement_id):
        """Get an enforcement with the execution it requested"""
        enforcement = service.get_enforcement(enforcement_id)
        ensure_pack_permission("events:view", enforcement.pack_name)
        enforcement.execution = service.execution_of(enforcement)
        return enforcement
