"""The key-value store: system-wide and per-user keys, secret values kept in Vault."""

from __future__ import annotations

from flask.views import MethodView

from app.api.common import Blueprint, paginate
from app.db import db
from app.schemas.key import (
    KeyCreateSchema,
    KeyListArgs,
    KeyReadArgs,
    KeySchema,
    KeyScopeArgs,
    KeyValueSchema,
)
from app.security import current_principal, requires
from app.security.decorators import run_token_accepted
from app.services import keys as service

blp = Blueprint("keys", __name__, url_prefix="/api/v1/keys", description="The key-value store")


@blp.route("")
class Keys(MethodView):
    @run_token_accepted
    @requires("keys:view")
    @blp.arguments(KeyListArgs, location="query")
    @blp.response(200, KeySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List keys: system keys and one's own user-scoped keys, by name

        A secret's value is never in a list. Filters: `scope`, `prefix`; `user` (rbac:manage)
        lists another identity's user-scoped keys instead of one's own.
        """
        principal = current_principal()
        target = service.target_for(principal, "user", args.get("user"))
        return paginate(service.visible_keys(target.owner, args, principal.run_scope), pagination_parameters)

    @run_token_accepted
    @requires("keys:create")
    @blp.arguments(KeyCreateSchema)
    @blp.response(201, KeySchema)
    @blp.alt_response(409, description="A key of that name exists in that scope")
    @blp.alt_response(503, description="Vault is not available (secret keys only)")
    def post(self, data):
        """Create a key (`secret: true` keeps its value in Vault only)"""
        principal = current_principal()
        target = service.target_for(principal, data["scope"], data.get("user"))
        service.check_reach(principal, target, data["name"])
        key = service.create_key(target, data["name"], data)
        db.session.commit()
        return key


@blp.route("/<name>")
class KeyByName(MethodView):
    @run_token_accepted
    @requires("keys:view")
    @blp.arguments(KeyReadArgs, location="query")
    @blp.response(200, KeySchema)
    @blp.alt_response(503, description="Vault is not available (decrypting a secret)")
    def get(self, args, name):
        """Get a key; a secret's value only with `decrypt=true`

        Decrypting needs `keys:decrypt`, except for the owner of a user-scoped key; every
        decrypt is audited (who read which key, never the value).
        """
        principal = current_principal()
        target = service.target_for(principal, args["scope"], args.get("user"))
        service.check_reach(principal, target, name)
        key = service.get_key(target, name)
        return service.decrypt(principal, key) if args["decrypt"] else key

    @run_token_accepted
    @requires("keys:update")
    @blp.arguments(KeyScopeArgs, location="query")
    @blp.arguments(KeyValueSchema)
    @blp.response(200, KeySchema)
    @blp.alt_response(201, schema=KeySchema, description="The key was created (needs keys:create too)")
    @blp.alt_response(503, description="Vault is not available (secret keys only)")
    def put(self, args, data, name):
        """Create or replace a key"""
        principal = current_principal()
        target = service.target_for(principal, args["scope"], args.get("user"))
        service.check_reach(principal, target, name)
        key, created = service.put_key(principal, target, name, data)
        db.session.commit()
        return (key, 201) if created else key

    @run_token_accepted
    @requires("keys:delete")
    @blp.arguments(KeyScopeArgs, location="query")
    @blp.response(204)
    @blp.alt_response(503, description="Vault is not available (secret keys only)")
    def delete(self, args, name):
        """Delete a key (a secret's value leaves Vault once the deletion is committed)"""
        principal = current_principal()
        target = service.target_for(principal, args["scope"], args.get("user"))
        service.check_reach(principal, target, name)
        service.delete_key(service.get_key(target, name))
        db.session.commit()
