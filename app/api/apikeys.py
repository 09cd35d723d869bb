"""API keys: credentials for machines, sent as X-API-Key."""

from __future__ import annotations

from flask.views import MethodView

from app.api.common import Blueprint, paginate
from app.db import db
from app.errors import Forbidden, ValidationError
from app.schemas.auth import ApiKeyCreatedSchema, ApiKeyCreateSchema, ApiKeyListArgs, ApiKeySchema
from app.security import current_principal, requires
from app.services import apikeys as service
from app.services.identities import find_identity

blp = Blueprint("apikeys", __name__, url_prefix="/api/v1/apikeys", description="API keys for machines")


@blp.route("")
class ApiKeys(MethodView):
    @requires("apikeys:create")
    @blp.arguments(ApiKeyListArgs, location="query")
    @blp.response(200, ApiKeySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List API keys (one's own; everyone's with rbac:manage), newest first

        Never shows a key or its hash, only its prefix. Filters: `owner`, `include_revoked`.
        """
        return paginate(service.visible_keys(current_principal(), args), pagination_parameters)

    @requires("apikeys:create")
    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeyCreatedSchema)
    @blp.alt_response(422, description="Unknown permissions, or ones the owner does not hold")
    def post(self, data):
        """Create an API key: the answer's `key` is shown this once

        The key acts with its owner's permissions, or only `permissions` (a subset of them).
        """
        principal = current_principal()
        owner = principal.identity
        if data.get("owner") and data["owner"] != owner.name:
            if not principal.can(service.MANAGE):
                raise Forbidden("Creating keys for others needs the rbac:manage permission.",
                                {"permission": service.MANAGE})
            owner = find_identity(data["owner"])
            if owner is None:
                raise ValidationError("The request is not valid.", {"owner": [f"{data['owner']!r} does not exist."]})
        key, full = service.create_api_key(principal, owner, data["name"], data.get("permissions"),
                                           data.get("expires_at"))
        db.session.commit()
        key.key = full
        return key


@blp.route("/<int:key_id>")
class ApiKeyById(MethodView):
    @requires("apikeys:create")
    @blp.response(200, ApiKeySchema)
    @blp.alt_response(404, description="No such key among those visible to the caller")
    def get(self, key_id):
        """Get an API key's metadata"""
        return service.get_visible_key(current_principal(), key_id)

    @requires("apikeys:create")
    @blp.response(204)
    def delete(self, key_id):
        """Revoke an API key (it stops working at once; the row stays for the record)"""
        service.revoke_api_key(service.get_visible_key(current_principal(), key_id))
        db.session.commit()
