import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tokenmill.api.errors import install_error_handlers
from tokenmill.tenancy.admin import admin_router

ADMIN = "admin-secret-for-tests"


@pytest.fixture
def client(store):
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(admin_router(store, ADMIN))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        yield client


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN},
                                     {"Authorization": "Basic " + ADMIN}])
def test_admin_key_required(client, headers):
    for method, path in [("GET", "/admin/tenants"), ("POST", "/admin/keys"), ("DELETE", "/admin/keys/key_x")]:
        client.headers.pop("Authorization")
        r = client.request(method, path, headers=headers, json={})
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        assert r.status_code == 401
        assert r.json() == {"error": {"message": r.json()["error"]["message"], "type": "invalid_request_error",
                                      "param": None, "code": "invalid_api_key"}}
        assert "admin key" in r.json()["error"]["message"]


def test_tenant_and_key_over_http(client, store):
    r = client.post("/admin/tenants", json={"name": "acme", "rpm": 600, "budget": "50",
                                            "model_limits": {"llama3:8b": {"tpm": 100}}})
    assert r.status_code == 201, r.text
    tenant = r.json()
    assert tenant["name"] == "acme" and tenant["id"].startswith("ten_")
    assert tenant["budget_micros"] == 50_000_000 and tenant["budget"] == "50.000000"
    assert tenant["model_limits"] == {"llama3:8b": {"rpm": None, "tpm": 100}}
    assert client.get("/admin/tenants/acme").json() == tenant
    assert client.get(f"/admin/tenants/{tenant['id']}").json() == tenant
    assert client.get("/admin/tenants").json()["data"] == [tenant]

    r = client.post("/admin/keys", json={"tenant": "acme", "name": "ci", "tpm": 1000, "budget": 2.5,
                                         "expires_in_s": 3600})
    assert r.status_code == 201, r.text
    key = r.json()
    secret = key.pop("secret")
    assert key["tenant"] == "acme" and key["budget_micros"] == 2_500_000
    assert abs(key["expires_at"] - key["created_at"] - 3_600_000) < 10_000
    principal = store.authenticate(secret)
    assert principal is not None and principal.key.id == key["id"] and principal.tenant.id == tenant["id"]

    listed = client.get("/admin/keys", params={"tenant": "acme"})
    assert listed.json()["data"] == [key]
    assert secret not in listed.text and secret[:11] not in listed.text

    r = client.delete(f"/admin/keys/{key['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert store.authenticate(secret) is None


def test_patch_tenant_changes_only_what_is_sent(client, store):
    client.post("/admin/tenants", json={"name": "acme", "rpm": 10, "tpm": 20, "budget": "1"})
    _, secret = store.create_key("acme")
    r = client.patch("/admin/tenants/acme", json={"tpm": None, "budget": "2.000001"})
    assert r.status_code == 200, r.text
    assert (r.json()["rpm"], r.json()["tpm"], r.json()["budget_micros"]) == (10, None, 2_000_001)
    assert client.patch("/admin/tenants/acme", json={"disabled": True}).json()["disabled"] is True
    assert store.authenticate(secret) is None
    assert store.get_tenant("acme").limits.rpm == 10


def test_unknown_tenant_and_key_are_404(client):
    for method, path, body in [("GET", "/admin/tenants/nope", None), ("PATCH", "/admin/tenants/nope", {"rpm": 1}),
                               ("POST", "/admin/keys", {"tenant": "nope"}), ("DELETE", "/admin/keys/key_nope", None)]:
        r = client.request(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    assert client.get("/admin/keys", params={"tenant": "nope"}).status_code == 404


def test_validation_errors_name_the_field(client):
    client.post("/admin/tenants", json={"name": "acme"})
    cases = [
        ("/admin/tenants", {"name": "acme", "budget": "1.0000001"}, "budget"),
        ("/admin/tenants", {"name": "acme", "budget": "-5"}, "budget"),
        ("/admin/tenants", {"name": "acme", "budget": True}, "budget"),
        ("/admin/tenants", {"name": "acme", "rpm": 0}, "rpm"),
        ("/admin/tenants", {"name": "acme", "colour": "red"}, "colour"),
        ("/admin/tenants", {}, "name"),
        ("/admin/keys", {"tenant": "acme", "expires_in_s": 0}, "expires_in_s"),
        ("/admin/keys", {"tenant": "acme", "model_limits": {"m": {"rpm": "many"}}}, "model_limits.m.rpm"),
    ]
    for path, body, param in cases:
        r = client.post(path, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param, (body, r.json())
    r = client.post("/admin/tenants", json={"name": "acme"})
    assert r.status_code == 400 and "already exists" in r.json()["error"]["message"]
    r = client.post("/admin/tenants", json={"name": "bad name"})
    assert r.status_code == 400 and "cannot be a tenant name" in r.json()["error"]["message"]


def test_route_floor_over_http(client, store):
    r = client.post("/admin/tenants", json={"name": "picky", "route_floor": 0.7})
    assert r.status_code == 201 and r.json()["route_floor"] == 0.7
    assert client.patch("/admin/tenants/picky", json={"rpm": 10}).json()["route_floor"] == 0.7
    assert client.patch("/admin/tenants/picky", json={"route_floor": None}).json()["route_floor"] is None
    bad = client.post("/admin/tenants", json={"name": "greedy", "route_floor": 2})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "route_floor"
    assert store.get_tenant("picky").route_floor is None
