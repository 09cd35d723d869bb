"""The audit log: every change, failed and denied calls included, and every secret read."""

from __future__ import annotations

from flask.views import MethodView

from app.api.common import Blueprint, paginate
from app.schemas.audit import AuditEntrySchema, AuditListArgs
from app.security import requires
from app.services.audit import audit_query

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="The audit log")


@blp.route("")
class AuditLog(MethodView):
    @requires("audit:view")
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, AuditEntrySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List audit entries, newest first

        Filters: `actor`, `resource_type`, `resource`, `action` (a permission), `outcome`
        (success, failure, denied), `request_id`, `since`, `until`.
        """
        return paginate(audit_query(args), pagination_parameters)
