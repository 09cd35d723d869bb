"""Identities: people and service accounts, their roles, enabling and disabling."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, paginate
from app.db import db
from app.engine.search import like_pattern
from app.models import Identity, Role, RoleAssignment
from app.schemas.identity import (
    IdentityCreateSchema,
    IdentityListArgs,
    IdentitySchema,
    IdentityUpdateSchema,
    RoleAssignSchema,
)
from app.security import current_principal, requires
from app.services import identities as service
from app.services.rbac import assign_role, get_role, unassign_role

blp = Blueprint("identities", __name__, url_prefix="/api/v1/identities",
                description="Identities: people and service accounts")

SORTABLE = {"name": Identity.name, "created_at": Identity.created_at, "last_login_at": Identity.last_login_at}


@blp.route("")
class Identities(MethodView):
    @requires("rbac:view")
    @blp.arguments(IdentityListArgs, location="query")
    @blp.response(200, IdentitySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List identities

        Filters: `kind`, `enabled`, `role`, `q` (name contains); `sort` by name, created_at or
        last_login_at.
        """
        query = select(Identity)
        if args.get("kind"):
            query = query.where(Identity.kind == args["kind"])
        if "enabled" in args:
            query = query.where(Identity.enabled.is_(args["enabled"]))
        if args.get("q"):
            query = query.where(Identity.name.ilike(like_pattern(args["q"]), escape="\\"))
        if args.get("role"):
            query = query.where(Identity.id.in_(
                select(RoleAssignment.identity_id).join(Role, Role.id == RoleAssignment.role_id)
                .where(Role.name == args["role"])))
        query = apply_sort(query, args.get("sort"), SORTABLE, "name", Identity.id)
        return paginate(query, pagination_parameters)

    @requires("rbac:manage")
    @blp.arguments(IdentityCreateSchema)
    @blp.response(201, IdentitySchema)
    @blp.alt_response(409, description="The name is taken")
    def post(self, data):
        """Create an identity (a user, with an optional password, or a service account)"""
        identity = service.create_identity(data)
        db.session.commit()
        return identity


@blp.route("/<int:identity_id>")
class IdentityById(MethodView):
    @requires("rbac:view")
    @blp.response(200, IdentitySchema)
    @blp.alt_response(404, description="No such identity")
    def get(self, identity_id):
        """Get an identity"""
        return service.get_identity(identity_id)

    @requires("rbac:manage")
    @blp.arguments(IdentityUpdateSchema)
    @blp.response(200, IdentitySchema)
    def patch(self, data, identity_id):
        """Change display name, email or password (a new password ends the identity's sessions)"""
        identity = service.update_identity(service.get_identity(identity_id), data)
        db.session.commit()
        return identity

    @requires("rbac:manage")
    @blp.response(204)
    @blp.alt_response(409, description="Yourself, or the last enabled admin")
    def delete(self, identity_id):
        """Delete an identity with its API keys and role assignments"""
        service.delete_identity(service.get_identity(identity_id), current_principal().identity)
        db.session.commit()


@blp.route("/<int:identity_id>/enable")
class EnableIdentity(MethodView):
    @requires("rbac:manage")
    @blp.response(200, IdentitySchema)
    def post(self, identity_id):
        """Enable an identity"""
        identity = service.set_enabled(service.get_identity(identity_id), True, current_principal().identity)
        db.session.commit()
        return identity


@blp.route("/<int:identity_id>/disable")
class DisableIdentity(MethodView):
    @requires("rbac:manage")
    @blp.response(200, IdentitySchema)
    @blp.alt_response(409, description="Yourself, or the last enabled admin")
    def post(self, identity_id):
        """Disable an identity: its tokens and API keys stop working at once"""
        identity = service.set_enabled(service.get_identity(identity_id), False, current_principal().identity)
        db.session.commit()
        return identity


@blp.route("/<int:identity_id>/roles")
class IdentityRoles(MethodView):
    @requires("rbac:manage")
    @blp.arguments(RoleAssignSchema)
    @blp.response(200, IdentitySchema)
    @blp.alt_response(404, description="No such identity or role")
    def post(self, data, identity_id):
        """Assign a role (assigning one it already has changes nothing)"""
        identity = service.get_identity(identity_id)
        assign_role(identity, get_role(data["role"]))
        db.session.commit()
        return identity


@blp.route("/<int:identity_id>/roles/<role>")
class IdentityRole(MethodView):
    @requires("rbac:manage")
    @blp.response(204)
    @blp.alt_response(404, description="No such identity or role, or not assigned")
    @blp.alt_response(409, description="The last enabled admin would lose the admin role")
    def delete(self, identity_id, role):
        """Take a role away"""
        unassign_role(service.get_identity(identity_id), get_role(role))
        db.session.commit()
