"""The sensors API: polling code, its interval and the triggers it emits."""

from __future__ import annotations

import pytest

from app.models import Sensor
from tests.api.helpers import assert_error, assert_hostile_rejected, assert_too_large, refs, total

URL = "/api/v1/sensors"


def body(**fields):
    return {"pack": "acme", "name": "watch", "class_name": "PageWatcher", "entry_point": "sensors/watch.py",
            **fields}


def test_create_get_update_delete_sensor(api, create_trigger, rows):
    create_trigger("acme.page")
    create_trigger("core.webhook")
    created = api.post(URL, json=body(poll_interval=30, trigger_types=["acme.page"], description="Watches"))
    assert created.status_code == 201, created.json
    assert created.json["ref"] == "acme.watch"
    assert created.json["enabled"] is True and created.json["poll_interval"] == 30
    assert created.json["trigger_types"] == ["acme.page"]
    assert created.json["last_polled_at"] is None

    got = api.get(f"{URL}/acme.watch")
    assert got.status_code == 200 and got.json["class_name"] == "PageWatcher"

    patched = api.patch(f"{URL}/acme.watch", json={"poll_interval": None,
                                                   "trigger_types": ["acme.page", "core.webhook"]})
    assert patched.status_code == 200, patched.json
    assert patched.json["poll_interval"] is None
    assert patched.json["trigger_types"] == ["acme.page", "core.webhook"]
    assert patched.json["entry_point"] == "sensors/watch.py"

    assert api.delete(f"{URL}/acme.watch").status_code == 204
    assert_error(api.get(f"{URL}/acme.watch"), 404)
    assert_error(api.delete(f"{URL}/acme.watch"), 404)
    assert rows(Sensor) == 0


def test_enable_and_disable(api, create_sensor):
    create_sensor("acme.watch")
    disabled = api.post(f"{URL}/acme.watch/disable")
    assert disabled.status_code == 200 and disabled.json["enabled"] is False
    assert api.get(f"{URL}/acme.watch").json["enabled"] is False
    assert api.post(f"{URL}/acme.watch/disable").json["enabled"] is False  # idempotent
    enabled = api.post(f"{URL}/acme.watch/enable")
    assert enabled.status_code == 200 and enabled.json["enabled"] is True
    assert_error(api.post(f"{URL}/acme.nope/enable"), 404)
    assert_error(api.post(f"{URL}/acme.nope/disable"), 404)


@pytest.mark.parametrize("fields, field", [
    ({"class_name": None}, "class_name"),
    ({"class_name": "not a class"}, "class_name"),
    ({"class_name": "x" * 300}, "class_name"),
    ({"class_name": "Poller\n"}, "class_name"),
    ({"trigger_types": ["acme.page\n"]}, "trigger_types"),
    ({"entry_point": ""}, "entry_point"),
    ({"entry_point": "../../etc/passwd"}, "entry_point"),
    ({"entry_point": "sensors/../../x.py"}, "entry_point"),
    ({"entry_point": "/abs/path.py"}, "entry_point"),
    ({"entry_point": "~/x.py"}, "entry_point"),
    ({"poll_interval": 0}, "poll_interval"),
    ({"poll_interval": -5}, "poll_interval"),
    ({"poll_interval": 10**30}, "poll_interval"),
    ({"poll_interval": "often"}, "poll_interval"),
    ({"poll_interval": 1.5}, "poll_interval"),
    ({"trigger_types": ["acme.missing"]}, "trigger_types"),
    ({"trigger_types": "acme.page"}, "trigger_types"),
    ({"trigger_types": ["not-a-ref"]}, "trigger_types"),
    ({"trigger_types": ["acme.page", "acme.page"]}, "trigger_types"),
    ({"enabled": "sometimes"}, "enabled"),
    ({"last_polled_at": "2026-01-01T00:00:00Z"}, "last_polled_at"),
])
def test_invalid_sensor_is_422_naming_the_field(api, create_trigger, rows, fields, field):
    create_trigger("acme.page")
    response = api.post(URL, json=body(**fields))
    assert_error(response, 422, field)
    assert rows(Sensor) == 0


def test_missing_required_fields(api, create_pack):
    create_pack("acme")
    errors = assert_error(api.post(URL, json={"pack": "acme", "name": "w"}), 422)["errors"]
    assert {"class_name", "entry_point"} <= set(errors)


def test_missing_trigger_types_are_named(api, create_trigger):
    create_trigger("acme.page")
    errors = assert_error(api.post(URL, json=body(trigger_types=["acme.page", "acme.gone", "x.y"])), 422)["errors"]
    assert errors["trigger_types"] == ["Trigger 'acme.gone' does not exist.", "Trigger 'x.y' does not exist."]


def test_duplicate_ref_is_409(api, create_sensor, rows):
    create_sensor("acme.watch")
    assert_error(api.post(URL, json=body()), 409, "ref")
    assert rows(Sensor) == 1


def test_update_errors_leave_the_row_unchanged(api, create_sensor):
    create_sensor("acme.watch", poll_interval=60)
    assert_error(api.patch(f"{URL}/acme.nope", json={"poll_interval": 5}), 404)
    assert_error(api.patch(f"{URL}/acme.watch", json={"poll_interval": 0}), 422, "poll_interval")
    assert_error(api.patch(f"{URL}/acme.watch", json={"entry_point": "../x.py"}), 422, "entry_point")
    assert_error(api.patch(f"{URL}/acme.watch", json={"trigger_types": ["a.b"]}), 422, "trigger_types")
    assert_error(api.patch(f"{URL}/acme.watch", json={"name": "x"}), 422, "name")
    got = api.get(f"{URL}/acme.watch").json
    assert got["poll_interval"] == 60 and got["entry_point"] == "sensors/poller.py" and got["trigger_types"] == []


def test_list_filters_search_sort_and_pages(api, create_sensor):
    create_sensor("acme.b_watch")
    create_sensor("acme.bxwatch", enabled=False)
    create_sensor("ops.alpha")
    assert refs(api.get(URL)) == ["acme.b_watch", "acme.bxwatch", "ops.alpha"]
    assert refs(api.get(f"{URL}?enabled=false")) == ["acme.bxwatch"]
    assert refs(api.get(f"{URL}?enabled=true&pack=acme")) == ["acme.b_watch"]
    assert refs(api.get(f"{URL}?q=b_")) == ["acme.b_watch"]
    assert refs(api.get(f"{URL}?sort=-name")) == ["acme.bxwatch", "acme.b_watch", "ops.alpha"]
    assert refs(api.get(f"{URL}?sort=-created_at&page_size=1")) == ["ops.alpha"]
    assert total(api.get(f"{URL}?page_size=1")) == 3
    assert api.get(f"{URL}?page=4&page_size=1").json == []
    assert_error(api.get(f"{URL}?page=0"), 422, "page")
    assert_error(api.get(f"{URL}?page_size=101"), 422, "page_size")
    assert_error(api.get(f"{URL}?enabled=maybe"), 422, "enabled")
    assert_error(api.get(f"{URL}?sort=class_name"), 422, "sort")


def test_hostile_bodies_never_5xx(api, create_pack, create_sensor, rows):
    create_pack("acme")
    assert_hostile_rejected(api, "POST", URL, body(), lambda: rows(Sensor))
    create_sensor("acme.watch")
    assert_hostile_rejected(api, "PATCH", f"{URL}/acme.watch", {}, lambda: rows(Sensor))
    assert_error(api.post(URL, json=body(entry_point="sensors/a\u0000.py")), 422, "entry_point")
    assert rows(Sensor) == 1


def test_body_over_the_limit_is_413(api, app, create_sensor, rows):
    create_sensor("acme.watch")
    assert_too_large(api, "PATCH", f"{URL}/acme.watch", app.config["MAX_BODY_BYTES"], lambda: rows(Sensor))


def test_permissions(anonymous, client_as, scoped_client, create_sensor):
    create_sensor("acme.watch")
    create_sensor("other.watch")
    assert_error(anonymous.post(f"{URL}/acme.watch/disable"), 401)
    viewer = client_as("viewer")
    assert len(viewer.get(URL).json) == 2
    assert_error(viewer.post(f"{URL}/acme.watch/disable"), 403)

    scoped = scoped_client({"sensors:view": "acme", "sensors:update": "acme"})
    assert refs(scoped.get(URL)) == ["acme.watch"]
    assert scoped.post(f"{URL}/acme.watch/disable").status_code == 200
    assert_error(scoped.post(f"{URL}/other.watch/disable"), 403)
    assert_error(scoped.post(URL, json=body(name="new")), 403)
