"""Registering packs from PACKS_PATH (the StackStorm pack layout on disk)."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint
from app.db import db
from app.errors import Forbidden
from app.models import Action, Rule, Sensor, Trigger
from app.schemas.pack_registration import PackRegisterResultSchema, PackRegisterSchema
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission, pack_of
from app.services.pack_loader import register_all, register_packs

blp = Blueprint("pack_registration", __name__, url_prefix="/api/v1/packs",
                description="Register packs from PACKS_PATH")


@blp.route("/register")
class PackRegistration(MethodView):
    @requires("packs:register", pack_from=None)
    @blp.arguments(PackRegisterSchema)
    @blp.response(200, PackRegisterResultSchema)
    @blp.alt_response(403, description="A pack outside the caller's packs:register grant")
    @blp.alt_response(404, description="No such pack directory (or no pack.yaml in it)")
    @blp.alt_response(409, description="Content that left the pack is still used by rules")
    @blp.alt_response(422, description="A path outside PACKS_PATH, or bad pack files (named by file and field)")
    def post(self, data):
        """Register packs from PACKS_PATH

        Reads each pack's `pack.yaml`, `actions/`, `triggers/`, `sensors/`, `rules/` and
        `config.schema.yaml`, creates or updates their rows in place and removes rows whose
        file is gone. All or nothing: one bad file and nothing of the request is written.
        Omit `packs` to register every pack directory in PACKS_PATH.
        """
        results = (register_packs(data["packs"], authorize=_may_register) if data.get("packs")
                   else register_all(authorize=_may_register))
        _may_use_other_packs([result.pack for result in results])
        db.session.commit()
        return {"packs": [result.as_dict() for result in results]}


def _may_use_other_packs(packs: list[str]) -> None:
    """Rules and sensors that reach into other packs need what the API would ask for them.

    Checked on the written rows before the commit; a refusal rolls the registration back.
    """
    principal = current_principal()
    for rule_pack, action_pack, trigger_pack in db.session.execute(
        select(Rule.pack_name, Action.pack_name, Trigger.pack_name)
        .join(Action, Rule.action_id == Action.id).join(Trigger, Rule.trigger_id == Trigger.id)
        .where(Rule.pack_name.in_(packs))
    ):
        ensure_pack_permission("actions:execute", action_pack)
        if trigger_pack != rule_pack:
            ensure_pack_permission("triggers:view", trigger_pack)
    if principal.can("events:create"):
        return
    for sensor_pack, trigger_types in db.session.execute(
        select(Sensor.pack_name, Sensor.trigger_types).where(Sensor.pack_name.in_(packs))
    ):
        foreign = [ref for ref in trigger_types or [] if pack_of(ref) != sensor_pack]
        if foreign:
            raise Forbidden("Emitting another pack's trigger types needs the events:create permission.",
                            {"permission": "events:create", "trigger_types": foreign})


def _may_register(pack_name: str) -> None:
    # A pack's name is only known once its pack.yaml is read; a pack-scoped grant is checked
    # then, before the pack's other files are read or anything is written.
    ensure_pack_permission("packs:register", pack_name)
