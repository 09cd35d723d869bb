from tests.factories import pagination


def test_create_and_get_action(api, create_pack):
    create_pack("acme")
    response = api.post("/api/v1/actions", json={"pack": "acme", "name": "hello", "runner_type": "local-shell-cmd",
                                                   "parameters": {"cmd": {"type": "string", "default": "echo hi"}}})
    assert response.status_code == 201, response.json
    assert response.json["ref"] == "acme.hello"
    got = api.get("/api/v1/actions/acme.hello")
    assert got.status_code == 200
    assert got.json["parameters"]["cmd"]["default"] == "echo hi"
    listed = api.get("/api/v1/actions?pack=acme")
    assert [a["ref"] for a in listed.json] == ["acme.hello"]
    assert pagination(listed)["total"] == 1
