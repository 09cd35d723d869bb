"""Rules: when an event of a trigger matches the criteria, run an action."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, paginate
from app.api.rule_lists import SORTABLE
from app.db import db
from app.models import Action, Rule, Trigger
from app.schemas.common import ContentListWithEnabledArgs, filter_string
from app.schemas.event import RuleTestResultSchema, RuleTestSchema
from app.schemas.rule import RefField, RuleSchema, RuleUpdateSchema
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission, pack_of
from app.services import events, rules_engine
from app.services import rules as service
from app.services.content import filter_content

blp = Blueprint("rules", __name__, url_prefix="/api/v1/rules", description="Rules: if this trigger fires, run that")


class RuleListArgs(ContentListWithEnabledArgs):
    trigger = RefField(validate=filter_string(257), metadata={"description": "trigger ref"})
    action = RefField(validate=filter_string(257), metadata={"description": "action ref"})


def _require_action_use(data: dict, rule: Rule | None = None) -> None:
    # A rule runs its action on every matching event: choosing what it runs, and with which
    # parameters, is running the action, so it needs actions:execute on the action's pack
    # (otherwise rules:create/update would be a way around that permission).
    if "action" in data:
        ensure_pack_permission("actions:execute", pack_of(data["action"]) or "")
    elif rule is not None and "action_parameters" in data:
        ensure_pack_permission("actions:execute", rule.action.pack_name)
    # Binding a rule to another pack's trigger hands that pack's event payloads to the rule's
    # action (whose executions its author reads), so that pack must be one they may view.
    rule_pack = rule.pack_name if rule is not None else data.get("pack_name")
    if "trigger" in data and pack_of(data["trigger"]) != rule_pack:
        ensure_pack_permission("triggers:view", pack_of(data["trigger"]) or "")


@blp.route("")
class Rules(MethodView):
    @requires("rules:view")
    @blp.arguments(RuleListArgs, location="query")
    @blp.response(200, RuleSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List rules

        Filters: `pack`, `enabled`, `trigger` (ref), `action` (ref), `q` (name contains); `sort` by
        ref, name, pack, created_at or updated_at.
        """
        query = filter_content(select(Rule), Rule, args, current_principal().packs_for("rules:view"))
        if args.get("trigger"):
            query = query.where(Rule.trigger_id == select(Trigger.id).where(Trigger.ref == args["trigger"]).scalar_subquery())
        if args.get("action"):
            query = query.where(Rule.action_id == select(Action.id).where(Action.ref == args["action"]).scalar_subquery())
        query = apply_sort(query, args.get("sort"), SORTABLE, "ref", Rule.id)
        return paginate(query, pagination_parameters)

    @requires("rules:create", pack_from=None)
    @blp.arguments(RuleSchema)
    @blp.response(201, RuleSchema)
    @blp.alt_response(409, description="A rule with this ref exists")
    def post(self, data):
        """Create a rule

        Needs `actions:execute` on the action's pack as well, and `triggers:view` on the
        trigger's pack when it is another pack's trigger.
        """
        ensure_pack_permission("rules:create", data["pack_name"])
        _require_action_use(data)
        rule = service.create_rule(data, author=current_principal().name)
        db.session.commit()
        return rule


@blp.route("/<ref>")
class RuleByRef(MethodView):
    @requires("rules:view")
    @blp.response(200, RuleSchema)
    @blp.alt_response(404, description="No such rule")
    def get(self, ref):
        """Get a rule by ref"""
        return service.get_rule(ref)

    @requires("rules:update")
    @blp.arguments(RuleUpdateSchema)
    @blp.response(200, RuleSchema)
    def patch(self, data, ref):
        """Change some fields of a rule

        A new `action` or new `action_parameters` need `actions:execute` on the action's pack
        too, and a `trigger` of another pack needs `triggers:view` on that pack.
        """
        rule = service.get_rule(ref)
        _require_action_use(data, rule)
        rule = service.update_rule(rule, data, author=current_principal().name)
        db.session.commit()
        return rule

    @requires("rules:delete")
    @blp.response(204)
    def delete(self, ref):
        """Delete a rule"""
        service.delete_rule(service.get_rule(ref))
        db.session.commit()


@blp.route("/<ref>/enable")
class RuleEnable(MethodView):
    @requires("rules:update")
    @blp.response(200, RuleSchema)
    def post(self, ref):
        """Enable a rule"""
        rule = service.set_enabled(service.get_rule(ref), True, author=current_principal().name)
        db.session.commit()
        return rule


@blp.route("/<ref>/disable")
class RuleDisable(MethodView):
    @requires("rules:update")
    @blp.response(200, RuleSchema)
    def post(self, ref):
        """Disable a rule"""
        rule = service.set_enabled(service.get_rule(ref), False, author=current_principal().name)
        db.session.commit()
        return rule


@blp.route("/<ref>/test")
class RuleTest(MethodView):
    @requires("rules:view")
    @blp.arguments(RuleTestSchema)
    @blp.response(200, RuleTestResultSchema)
    def post(self, data, ref):
        """Test a rule against a payload or a recorded event

        Answers whether the rule would fire and why: each criterion's path, the value found,
        the operator, the pattern and its verdict, and the parameters the action would get
        (secrets masked). Nothing is recorded or run. Testing against an event needs
        `events:view` on its pack.
        """
        rule = service.get_rule(ref)
        event = None
        if "event" in data:
            event = events.get_event(data["event"])
            ensure_pack_permission("events:view", event.pack_name)
        payload = event.payload if event is not None else data["payload"]
        return rules_engine.explain_rule(rule, payload, event)
