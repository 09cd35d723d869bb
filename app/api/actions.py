"""Actions: what can run."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, content_sort_columns, paginate
from app.api.rule_lists import related_rules
from app.db import db
from app.models import Action, Rule
from app.schemas.action import ActionSchema, ActionUpdateSchema
from app.schemas.common import ContentListWithEnabledArgs, filter_string
from app.schemas.execution import ExecuteSchema, ExecutionSchema
from app.schemas.rule import RuleSchema
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission
from app.services import actions as service
from app.services import executions
from app.services.content import filter_content

blp = Blueprint("actions", __name__, url_prefix="/api/v1/actions", description="Actions: what can run")

SORTABLE = content_sort_columns(Action)


class ActionListArgs(ContentListWithEnabledArgs):
    runner_type = ma.fields.String(validate=filter_string(64))


@blp.route("")
class Actions(MethodView):
    @requires("actions:view")
    @blp.arguments(ActionListArgs, location="query")
    @blp.response(200, ActionSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List actions

        Filters: `pack`, `enabled`, `runner_type`, `q` (name contains); `sort` by ref, name,
        pack, created_at or updated_at.
        """
        query = filter_content(select(Action), Action, args, current_principal().packs_for("actions:view"))
        if args.get("runner_type"):
            query = query.where(Action.runner_type == args["runner_type"])
        query = apply_sort(query, args.get("sort"), SORTABLE, "ref", Action.id)
        return paginate(query, pagination_parameters)

    @requires("actions:create", pack_from=None)
    @blp.arguments(ActionSchema)
    @blp.response(201, ActionSchema)
    @blp.alt_response(409, description="An action with this ref exists")
    def post(self, data):
        """Create an action"""
        ensure_pack_permission("actions:create", data["pack_name"])
        action = service.create_action(data)
        db.session.commit()
        return action


@blp.route("/<ref>")
class ActionByRef(MethodView):
    @requires("actions:view")
    @blp.response(200, ActionSchema)
    @blp.alt_response(404, description="No such action")
    def get(self, ref):
        """Get an action by ref"""
        return service.get_action(ref)

    @requires("actions:update")
    @blp.arguments(ActionUpdateSchema)
    @blp.response(200, ActionSchema)
    def patch(self, data, ref):
        """Change some fields of an action"""
        action = service.update_action(service.get_action(ref), data)
        db.session.commit()
        return action

    @requires("actions:delete")
    @blp.response(204)
    @blp.alt_response(409, description="Rules still use this action")
    def delete(self, ref):
        """Delete an action (409 while rules use it)"""
        service.delete_action(service.get_action(ref))
        db.session.commit()


@blp.route("/<ref>/rules")
class ActionRules(MethodView):
    # Rules of any pack may use this action; the list shows those the caller may view.
    @requires("actions:view")
    @blp.arguments(ContentListWithEnabledArgs, location="query")
    @blp.response(200, RuleSchema(many=True))
    @blp.paginate()
    def get(self, args, ref, pagination_parameters):
        """List the rules that run this action

        Only the rules the caller may view (`rules:view`, on their packs) are listed.
        Filters: `pack`, `enabled`, `q` (name contains); `sort` by ref, name, pack, created_at
        or updated_at.
        """
        action = service.get_action(ref)
        return related_rules(Rule.action_id == action.id, args, pagination_parameters)



@blp.route("/<ref>/execute")
class ActionExecute(MethodView):
    @requires("actions:execute")
    @blp.arguments(ExecuteSchema)
    @blp.response(201, ExecutionSchema)
    @blp.alt_response(404, description="No such action")
    @blp.alt_response(409, description="The action is disabled")
    @blp.alt_response(422, description="A parameter is missing or not valid (named in `errors.parameters`)")
    def post(self, data, ref):
        """Run an action: validates the parameters, answers with the `requested` execution"""
        action = executions.action_for_execute(ref)
        execution = executions.create_execution(action, data["parameters"], user=current_principal().name)
        db.session.commit()
        return execution
