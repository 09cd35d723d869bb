"""Sensors: polling code in packs that turns the outside world into events."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from app.api.common import Blueprint, apply_sort, content_sort_columns, paginate
from app.db import db
from app.errors import Forbidden
from app.models import Sensor
from app.schemas.common import ContentListWithEnabledArgs
from app.schemas.sensor import SensorSchema, SensorUpdateSchema
from app.security import current_principal, requires
from app.security.decorators import ensure_pack_permission, pack_of
from app.services import sensors as service
from app.services.content import filter_content

blp = Blueprint("sensors", __name__, url_prefix="/api/v1/sensors", description="Sensors: polling code that emits events")

SORTABLE = content_sort_columns(Sensor)


def _require_trigger_use(data: dict, pack: str) -> None:
    # A sensor emits events of its trigger types, which fire every rule on them: emitting
    # another pack's trigger is creating events for that pack, so it needs events:create.
    foreign = [ref for ref in data.get("trigger_types") or [] if pack_of(ref) != pack]
    if foreign and not current_principal().can("events:create"):
        raise Forbidden(
            "Emitting another pack's trigger types needs the events:create permission.",
            {"permission": "events:create", "trigger_types": foreign},
        )


@blp.route("")
class Sensors(MethodView):
    @requires("sensors:view")
    @blp.arguments(ContentListWithEnabledArgs, location="query")
    @blp.response(200, SensorSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List sensors

        Filters: `pack`, `enabled`, `q` (name contains); `sort` by ref, name, pack, created_at or
        updated_at.
        """
        query = filter_content(select(Sensor), Sensor, args, current_principal().packs_for("sensors:view"))
        query = apply_sort(query, args.get("sort"), SORTABLE, "ref", Sensor.id)
        return paginate(query, pagination_parameters)

    @requires("sensors:create", pack_from=None)
    @blp.arguments(SensorSchema)
    @blp.response(201, SensorSchema)
    @blp.alt_response(409, description="A sensor with this ref exists")
    def post(self, data):
        """Create a sensor"""
        ensure_pack_permission("sensors:create", data["pack_name"])
        _require_trigger_use(data, data["pack_name"])
        sensor = service.create_sensor(data)
        db.session.commit()
        return sensor


@blp.route("/<ref>")
class SensorByRef(MethodView):
    @requires("sensors:view")
    @blp.response(200, SensorSchema)
    @blp.alt_response(404, description="No such sensor")
    def get(self, ref):
        """Get a sensor by ref"""
        return service.get_sensor(ref)

    @requires("sensors:update")
    @blp.arguments(SensorUpdateSchema)
    @blp.response(200, SensorSchema)
    def patch(self, data, ref):
        """Change some fields of a sensor"""
        sensor = service.get_sensor(ref)
        _require_trigger_use(data, sensor.pack_name)
        sensor = service.update_sensor(sensor, data)
        db.session.commit()
        return sensor

    @requires("sensors:delete")
    @blp.response(204)
    def delete(self, ref):
        """Delete a sensor"""
        service.delete_sensor(service.get_sensor(ref))
        db.session.commit()


@blp.route("/<ref>/enable")
class SensorEnable(MethodView):
    @requires("sensors:update")
    @blp.response(200, SensorSchema)
    def post(self, ref):
        """Enable a sensor (beat starts polling it)"""
        sensor = service.set_enabled(service.get_sensor(ref), True)
        db.session.commit()
        return sensor


@blp.route("/<ref>/disable")
class SensorDisable(MethodView):
    @requires("sensors:update")
    @blp.response(200, SensorSchema)
    def post(self, ref):
        """Disable a sensor (beat stops polling it)"""
        sensor = service.set_enabled(service.get_sensor(ref), False)
        db.session.commit()
        return sensor
