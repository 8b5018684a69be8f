import statistics
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tokenmill.db.engine import open_database
from tokenmill.db.schema import api_keys
from tokenmill.tenancy.records import Limits
from tokenmill.tenancy.store import TenancyError, TenancyNotFound, TenancyStore


def _windows(secret: str, width: int) -> list[str]:
    return [secret[i:i + width] for i in range(len(secret) - width + 1)]


def test_database_holds_no_usable_key_material(store, engine, db_url):
    store.create_tenant("acme")
    secrets = [store.create_key("acme", name=f"k{i}")[1] for i in range(3)]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys)).all()
    assert len(rows) == 3
    prefix_len = len(rows[0].prefix)
    # any substring longer than the prefix contains one of these windows
    windows = [w for s in secrets for w in _windows(s, prefix_len + 1)]
    for row in rows:
        for value in row:
            text = str(value)
            assert not any(w in text for w in windows), f"key material in column value {text!r}"
    # nor anywhere in the database files themselves: no piece of the secret past its stored prefix (in the file
    # the prefix's bytes may run on into the hash's, so a window that starts inside the prefix can match by chance)
    engine.dispose()
    path = Path(db_url.removeprefix("sqlite:///"))
    data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    hidden = [w for s in secrets for w in _windows(s[prefix_len:], prefix_len + 1)]
    assert hidden and not any(w.encode() in data for w in hidden)


def test_authenticate_then_revoke_fails_at_once_everywhere(store, db_url):
    tenant = store.create_tenant("acme", Limits(rpm=60))
    key, secret = store.create_key("acme", name="ci", limits=Limits(tpm=1000))
    principal = store.authenticate(secret)
    assert principal is not None
    assert principal.tenant.id == tenant.id and principal.tenant.limits == Limits(rpm=60)
    assert principal.key.id == key.id and principal.key.limits == Limits(tpm=1000)
    assert store.authenticate(secret + "x") is None
    assert store.authenticate("") is None

    other_engine = open_database(db_url)  # as another API process would see it
    other = TenancyStore(other_engine)
    assert other.authenticate(secret) is not None
    revoked = store.revoke_key(key.id)
    assert revoked.revoked_at is not None
    assert store.authenticate(secret) is None
    assert other.authenticate(secret) is None
    other_engine.dispose()
    assert store.revoke_key(key.id).revoked_at == revoked.revoked_at  # revoking again changes nothing


def test_expired_key_fails(store, clock):
    store.create_tenant("acme")
    _, secret = store.create_key("acme", expires_at=clock.ms + 60_000)
    assert store.authenticate(secret) is not None
    clock.ms += 59_999
    assert store.authenticate(secret) is not None
    clock.ms += 1  # expires_at <= now
    assert store.authenticate(secret) is None


def test_key_cannot_be_created_already_expired(store, clock):
    store.create_tenant("acme")
    with pytest.raises(TenancyError, match="not in the future"):
        store.create_key("acme", expires_at=clock.ms)


def test_disabled_tenant_fails_and_reenabling_restores(store):
    store.create_tenant("acme")
    _, secret = store.create_key("acme")
    assert store.update_tenant("acme", disabled=True).disabled
    assert store.authenticate(secret) is None
    store.update_tenant("acme", disabled=False)
    assert store.authenticate(secret) is not None


def test_duplicate_tenant_name(store):
    store.create_tenant("acme")
    with pytest.raises(TenancyError, match="a tenant named 'acme' already exists"):
        store.create_tenant("acme")


def test_unknown_tenant_and_key(store):
    with pytest.raises(TenancyNotFound, match="no tenant named 'nope'.*tokenmill tenants create nope"):
        store.get_tenant("nope")
    with pytest.raises(TenancyNotFound):
        store.create_key("nope")
    with pytest.raises(TenancyNotFound, match="no key with id 'key_0'"):
        store.revoke_key("key_0")


def test_bad_names_and_limits_are_refused(store):
    for name in ["", "has space", "ten_0123", "x" * 201]:
        with pytest.raises(TenancyError, match="cannot be a tenant name"):
            store.create_tenant(name)
    with pytest.raises(TenancyError, match="rpm .* at least 1"):
        store.create_tenant("acme", Limits(rpm=0))
    with pytest.raises(TenancyError, match="budget"):
        store.create_tenant("acme", Limits(budget_micros=-1))
    with pytest.raises(TenancyError, match="rpm and tpm only"):
        store.create_tenant("acme", model_limits={"m": Limits(budget_micros=5)})


def test_limits_and_model_limits_round_trip(store):
    tenant = store.create_tenant("acme", Limits(rpm=10, tpm=20, budget_micros=50_000_000),
                                 {"llama3:8b": Limits(rpm=5), "qwen": Limits(tpm=7)})
    assert store.get_tenant("acme") == tenant
    assert store.get_tenant(tenant.id) == tenant
    key, secret = store.create_key(tenant.id, "k", Limits(budget_micros=1), {"m": Limits(rpm=1, tpm=2)})
    assert store.list_keys("acme") == [key]
    assert store.authenticate(secret).key == key
    assert store.authenticate(secret).tenant == tenant

    updated = store.update_tenant("acme", limits=Limits(tpm=99), model_limits={})
    assert updated.limits == Limits(tpm=99) and updated.model_limits == {}
    assert store.get_tenant("acme") == updated
    assert [t.name for t in store.list_tenants()] == ["acme"]


def test_list_keys_by_tenant_and_has_keys(store):
    assert not store.has_keys()
    store.create_tenant("a")
    store.create_tenant("b")
    ka, _ = store.create_key("a")
    kb, _ = store.create_key("b")
    assert store.has_keys()
    assert [k.id for k in store.list_keys("a")] == [ka.id]
    assert {k.id for k in store.list_keys()} == {ka.id, kb.id}
    store.revoke_key(ka.id)
    store.revoke_key(kb.id)
    assert not store.has_keys()
    assert len(store.list_keys()) == 2  # revoked keys stay listed


def test_authenticate_is_one_quick_query(store, engine):
    store.create_tenant("acme")
    _, secret = store.create_key("acme")
    statements = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    store.authenticate(secret)
    sa.event.remove(engine, "before_cursor_execute", seen)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    samples = []
    for _ in range(300):
        start = time.perf_counter()
        store.authenticate(secret)
        samples.append(time.perf_counter() - start)
    assert statistics.median(samples) < 0.001, f"median authenticate took {statistics.median(samples) * 1e3:.2f} ms"


def test_a_tenants_route_floor_is_stored_reaches_its_keys_and_can_be_removed(store):
    store.create_tenant("picky", route_floor=0.75)
    _, secret = store.create_key("picky")
    assert store.get_tenant("picky").route_floor == 0.75
    assert store.authenticate(secret).tenant.route_floor == 0.75
    assert store.update_tenant("picky", limits=Limits(rpm=5)).route_floor == 0.75  # left as it was
    assert store.update_tenant("picky", route_floor=None).route_floor is None
    assert store.authenticate(secret).tenant.route_floor is None
    with pytest.raises(TenancyError, match="route_floor must be a quality score from 0 to 1"):
        store.create_tenant("greedy", route_floor=1.5)
