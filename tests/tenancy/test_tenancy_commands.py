import json
import subprocess
import sys

import pytest

from tokenmill.db.engine import open_database
from tokenmill.tenancy.commands import parse_duration_ms, parse_model_limit
from tokenmill.tenancy.records import Limits
from tokenmill.tenancy.store import TenancyStore


def tokenmill(*args: str, env_home) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokenmill.cli", *args], capture_output=True, text=True,
                          env={"TOKENMILL_HOME": str(env_home), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_tenants_and_keys_from_the_command_line(tmp_path, db_url):
    db = ["--database", db_url]
    run = lambda *a: tokenmill(*a, *db, env_home=tmp_path)  # noqa: E731

    created = run("tenants", "create", "acme", "--rpm", "600", "--budget", "50")
    assert created.returncode == 0, created.stderr
    duplicate = run("tenants", "create", "acme")
    assert duplicate.returncode == 2
    assert duplicate.stderr.strip().count("\n") == 0 and "already exists" in duplicate.stderr

    made = run("keys", "create", "--tenant", "acme", "--name", "ci", "--rpm", "60", "--tpm", "200000",
               "--budget", "12.5", "--expires-in", "30d", "--model-limit", "llama3:8b:rpm=5,tpm=100")
    assert made.returncode == 0, made.stderr
    secrets = [line.split(": ", 1)[1] for line in made.stdout.splitlines() if line.startswith("secret: ")]
    assert len(secrets) == 1 and secrets[0].startswith("tm-")
    secret = secrets[0]
    assert "cannot be shown again" in made.stdout + made.stderr

    listed = run("keys", "list")
    as_json = run("keys", "list", "--tenant", "acme", "--json")
    assert listed.returncode == 0 and as_json.returncode == 0
    for out in (listed.stdout, as_json.stdout):
        assert secret not in out and secret[:11] not in out
    assert secret[:10] in listed.stdout and "acme" in listed.stdout and "ci" in listed.stdout
    [key] = json.loads(as_json.stdout)
    assert key["tenant"] == "acme" and key["prefix"] == secret[:10]
    assert key["rpm"] == 60 and key["tpm"] == 200000
    assert key["budget_micros"] == 12_500_000 and key["budget"] == "12.500000"
    assert key["model_limits"] == {"llama3:8b": {"rpm": 5, "tpm": 100}}
    assert abs(key["expires_at"] - key["created_at"] - 30 * 86_400_000) < 10_000
    [tenant] = json.loads(run("tenants", "list", "--json").stdout)
    assert tenant["name"] == "acme" and tenant["rpm"] == 600 and tenant["budget_micros"] == 50_000_000

    engine = open_database(db_url)
    store = TenancyStore(engine)
    principal = store.authenticate(secret)
    assert principal is not None and principal.key.id == key["id"]

    revoked = run("keys", "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert store.authenticate(secret) is None
    engine.dispose()

    unknown = run("keys", "revoke", "key_nothere")
    assert unknown.returncode == 2 and "no key with id 'key_nothere'" in unknown.stderr
    bad_budget = run("keys", "create", "--tenant", "acme", "--budget", "1.0000001")
    assert bad_budget.returncode == 2 and "more than 6 decimals" in bad_budget.stderr
    no_tenant = run("keys", "create", "--tenant", "nope")
    assert no_tenant.returncode == 2 and "tokenmill tenants create nope" in no_tenant.stderr


def test_duration_parsing():
    assert parse_duration_ms("30d") == 30 * 86_400_000
    assert parse_duration_ms("12h") == 12 * 3_600_000
    assert parse_duration_ms("90m") == 90 * 60_000
    for bad in ["", "0d", "5", "1.5h", "3w", "-1d"]:
        with pytest.raises(ValueError, match="30d, 12h or 90m"):
            parse_duration_ms(bad)


def test_model_limit_parsing():
    assert parse_model_limit("llama3:8b:rpm=5,tpm=100") == ("llama3:8b", Limits(rpm=5, tpm=100))
    assert parse_model_limit("qwen:tpm=7") == ("qwen", Limits(tpm=7))
    for bad in ["qwen", ":rpm=5", "qwen:rpm=", "qwen:budget=5", "qwen:rpm=-1"]:
        with pytest.raises(ValueError, match="MODEL:rpm=N,tpm=N"):
            parse_model_limit(bad)
