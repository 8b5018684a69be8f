"""A small OpenAI-style server that misbehaves on purpose, for the benchmark's failure handling."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse


def _chunk(text: str | None, finish: str | None = None) -> str:
    return "data: " + json.dumps({"choices": [{"index": 0, "text": text or "", "finish_reason": finish}]}) + "\n\n"


def fake_app() -> FastAPI:
    app = FastAPI()
    counts = {"in_flight": 0, "max_in_flight": 0}

    @app.get("/stats")
    async def stats():
        return dict(counts)

    @app.post("/reset")
    async def reset():
        counts.update(in_flight=0, max_in_flight=0)

    @app.post("/ok/v1/completions")
    async def ok(body: dict):
        n = int(body["max_tokens"])
        counts["in_flight"] += 1
        counts["max_in_flight"] = max(counts["max_in_flight"], counts["in_flight"])

        async def stream():
            try:
                for i in range(n):
                    await asyncio.sleep(0.002)
                    yield _chunk(f" w{i}", "length" if i == n - 1 else None)
                usage = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
                yield "data: " + json.dumps({"choices": [], "usage": usage}) + "\n\n"
                yield "data: [DONE]\n\n"
            finally:
                counts["in_flight"] -= 1

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.post("/error/v1/completions")
    async def error():
        return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)

    @app.post("/busy/v1/completions")
    async def busy():
        return JSONResponse({"error": {"message": "queue full"}}, status_code=503, headers={"Retry-After": "1"})

    @app.post("/stall/v1/completions")
    async def stall():
        async def stream():
            yield _chunk(" first")
            await asyncio.sleep(30)
            yield _chunk(" never", "stop")

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.post("/cut/v1/completions")
    async def cut():
        async def stream():
            yield _chunk(" only")

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.post("/junk/v1/completions")
    async def junk():
        async def stream():
            yield "data: {not json\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    """Base URL of the misbehaving server, e.g. f'{fake_server}/stall/v1'."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
