"""Sessions for people: log in, refresh, log out, who am I, change password, register."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from app.api.common import Blueprint
from app.db import db
from app.errors import NotFound, Unauthorized, ValidationError
from app.schemas.auth import (
    LoginSchema,
    LogoutSchema,
    MeSchema,
    PasswordChangeSchema,
    RefreshSchema,
    RegisterSchema,
    TokensSchema,
)
from app.schemas.identity import IdentitySchema
from app.security import authenticated, current_principal, public
from app.security.authenticate import decode_claims, identity_for_claims
from app.security.ratelimit import limit_per_address, limit_per_username
from app.security.tokens import (
    SESSION_CLAIM,
    access_lifetime_seconds,
    end_session,
    issue_access_token,
    issue_tokens,
    revoke,
)
from app.services import identities as service
from app.services.passwords import verify_password

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Log in and out, tokens, password")


@blp.route("/login")
class Login(MethodView):
    @public
    @limit_per_address
    @limit_per_username
    @blp.arguments(LoginSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="Wrong username or password, or a disabled identity")
    @blp.alt_response(429, description="Too many attempts; see Retry-After")
    def post(self, data):
        """Log in with a username and password

        Answers an access token (send it as `Authorization: Bearer <token>`) and a refresh
        token (POST it to /auth/refresh for a new access token).
        """
        # Audit who tried, but only a name that exists: a password typed into the username
        # field must not end up in the audit log.
        known = service.find_identity(data["username"])
        g.audit_actor = known.name if known is not None else None
        identity = service.login(data["username"], data["password"])
        tokens = issue_tokens(identity.id)
        db.session.commit()
        return tokens


@blp.route("/refresh")
class Refresh(MethodView):
    @public
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, description="The refresh token is not valid, expired, revoked, or its identity disabled")
    def post(self, data):
        """Exchange a refresh token for a new access token"""
        claims = decode_claims(data["refresh_token"], "refresh")
        identity = identity_for_claims(claims)
        g.audit_actor = identity.name
        return {"access_token": issue_access_token(identity.id, session=claims.get(SESSION_CLAIM)),
                "token_type": "Bearer",
                "expires_in": access_lifetime_seconds()}


@blp.route("/logout")
class Logout(MethodView):
    @authenticated
    @blp.arguments(LogoutSchema)
    @blp.response(204)
    def post(self, data):
        """Log out: end the session of the access token used

        The access token, the refresh token of the same login and every access token refreshed
        from it stop working (and `refresh_token`, if given, with its session). Revocation is
        a Redis blocklist by token and session id, honoured by every web process. With
        `everywhere`, every token of the identity issued until now stops working. API keys
        are revoked with DELETE /api/v1/apikeys/<id> instead.
        """
        principal = current_principal()
        if principal.token_claims is None:
            raise ValidationError("Log out ends a token session; revoke an API key with DELETE /api/v1/apikeys/<id>.")
        refresh_claims = None
        if data.get("refresh_token"):
            try:
                refresh_claims = decode_claims(data["refresh_token"], "refresh")
            except Unauthorized:
                refresh_claims = None
            if refresh_claims is None or refresh_claims.get("sub") != principal.token_claims.get("sub"):
                raise ValidationError("The request is not valid.",
                                      {"refresh_token": ["Not a valid refresh token of this identity."]})
        revoke(principal.token_claims)
        end_session(principal.token_claims)
        if refresh_claims is not None:
            revoke(refresh_claims)
            end_session(refresh_claims)
        if data["everywhere"]:
            service.end_all_sessions(principal.identity)
            db.session.commit()


@blp.route("/me")
class Me(MethodView):
    @authenticated
    @blp.response(200, MeSchema)
    def get(self):
        """Who am I: identity, roles and effective permissions"""
        principal = current_principal()
        return {"identity": principal.identity, "roles": list(principal.roles),
                "permissions": principal.effective_permissions(),
                "api_key": principal.api_key.prefix if principal.api_key is not None else None}


@blp.route("/password")
class Password(MethodView):
    @authenticated
    @limit_per_address
    @blp.arguments(PasswordChangeSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(422, description="Wrong old password, or the new one fails the policy")
    @blp.alt_response(429, description="Too many attempts; see Retry-After")
    def post(self, data):
        """Change one's own password

        Every token issued before the change stops working; the answer carries new tokens.
        Policy: at least 12 characters, not containing the username, not a common password.
        """
        identity = current_principal().identity
        if not verify_password(identity.password_hash, data["old_password"]):
            raise ValidationError("The request is not valid.", {"old_password": ["Not the current password."]})
        service.set_password(identity, data["new_password"], field="new_password")
        db.session.commit()
        return issue_tokens(identity.id)


@blp.route("/register")
class Register(MethodView):
    @public
    @limit_per_address
    @blp.arguments(RegisterSchema)
    @blp.response(201, IdentitySchema)
    @blp.alt_response(404, description="Registration is not enabled (ALLOW_REGISTRATION)")
    @blp.alt_response(409, description="The username is taken")
    @blp.alt_response(429, description="Too many attempts; see Retry-After")
    def post(self, data):
        """Create an account (only with ALLOW_REGISTRATION); it has no role until an admin assigns one"""
        if not current_app.config.get("ALLOW_REGISTRATION"):
            raise NotFound("Registration is not enabled on this server.")
        g.audit_actor = data["username"]
        identity = service.register(data)
        db.session.commit()
        return identity
