"""Roles and their permission grants."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, paginate
from app.db import db
from app.engine.search import like_pattern
from app.models import Role
from app.schemas.role import (
    GrantQuerySchema,
    GrantSchema,
    PermissionInfoSchema,
    RoleListArgs,
    RoleSchema,
    RoleUpdateSchema,
)
from app.security import requires
from app.security.permissions import PERMISSIONS, is_pack_scopable
from app.services import rbac as service

blp = Blueprint("roles", __name__, url_prefix="/api/v1/roles", description="Roles and permission grants")

SORTABLE = {"name": Role.name, "created_at": Role.created_at}


@blp.route("")
class Roles(MethodView):
    @requires("rbac:view")
    @blp.arguments(RoleListArgs, location="query")
    @blp.response(200, RoleSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List roles with their grants"""
        query = select(Role)
        if "builtin" in args:
            query = query.where(Role.builtin.is_(args["builtin"]))
        if args.get("q"):
            query = query.where(Role.name.ilike(like_pattern(args["q"]), escape="\\"))
        query = apply_sort(query, args.get("sort"), SORTABLE, "name", Role.id)
        return paginate(query, pagination_parameters)

    @requires("rbac:manage")
    @blp.arguments(RoleSchema)
    @blp.response(201, RoleSchema)
    @blp.alt_response(409, description="The name is taken")
    def post(self, data):
        """Create a role, optionally with grants"""
        role = service.create_role(data["name"], data.get("description", ""), data.get("grants", []))
        db.session.commit()
        return role


@blp.route("/permissions")
class Permissions(MethodView):
    @requires("rbac:view")
    @blp.response(200, PermissionInfoSchema(many=True))
    def get(self):
        """The permission catalogue: every permission a role can grant"""
        return [{"permission": name, "description": text, "pack_scopable": is_pack_scopable(name)}
                for name, text in PERMISSIONS.items()]


@blp.route("/<name>")
class RoleByName(MethodView):
    @requires("rbac:view")
    @blp.response(200, RoleSchema)
    @blp.alt_response(404, description="No such role")
    def get(self, name):
        """Get a role"""
        return service.get_role(name)

    @requires("rbac:manage")
    @blp.arguments(RoleUpdateSchema)
    @blp.response(200, RoleSchema)
    @blp.alt_response(409, description="Built-in roles cannot change")
    def patch(self, data, name):
        """Change a role's description"""
        role = service.update_role(service.get_role(name), data["description"])
        db.session.commit()
        return role

    @requires("rbac:manage")
    @blp.response(204)
    @blp.alt_response(409, description="Built-in roles cannot be deleted")
    def delete(self, name):
        """Delete a role (its assignments go with it)"""
        service.delete_role(service.get_role(name))
        db.session.commit()


@blp.route("/<name>/permissions")
class RoleGrants(MethodView):
    @requires("rbac:manage")
    @blp.arguments(GrantSchema)
    @blp.response(201, RoleSchema)
    @blp.alt_response(409, description="Built-in role, or already granted")
    def post(self, data, name):
        """Grant a permission (on every pack, or on `pack` for pack-scopable permissions)"""
        role = service.grant_permission(service.get_role(name), data["permission"], data.get("pack"))
        db.session.commit()
        return role

    @requires("rbac:manage")
    @blp.arguments(GrantQuerySchema, location="query")
    @blp.response(204)
    @blp.alt_response(404, description="Not granted")
    @blp.alt_response(409, description="Built-in role")
    def delete(self, args, name):
        """Revoke a grant: `?permission=actions:view&pack=acme`"""
        service.revoke_permission(service.get_role(name), args["permission"], args.get("pack"))
        db.session.commit()
