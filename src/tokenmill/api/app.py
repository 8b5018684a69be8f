"""The OpenAI-compatible HTTP app. No business logic: it parses, calls the pipeline, formats."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, aclosing

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from tokenmill.api.auth import APIKeyMiddleware
from tokenmill.api.errors import APIError, install_error_handlers
from tokenmill.api.metrics import Metrics
from tokenmill.api.responses import LogprobsBuilder, ResponseShape
from tokenmill.api.schemas import ChatCompletionRequest, CompletionRequest
from tokenmill.config import ServeSettings
from tokenmill.engine.client import EngineClient
from tokenmill.engine.tokenizer import ChatTemplateError, Tokenizer, load_tokenizer
from tokenmill.gateway.pipeline import Delta, Generation, Pipeline, Usage

_json = msgspec.json.Encoder()


class ServerState:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.tokenizer: Tokenizer = load_tokenizer(settings.engine.model_path)
        self.metrics = Metrics()
        self.engine = EngineClient(settings.engine, settings.replicas)
        self.pipeline = Pipeline(self.engine, self.tokenizer, self.metrics, settings.max_queued_requests)
        self.started = int(time.time())


def create_app(settings: ServeSettings) -> FastAPI:
    """The app; its lifespan starts the engine processes and stops them on shutdown."""
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await state.engine.start()
        try:
            yield
        finally:
            await state.engine.shutdown()

    app = FastAPI(title="tokenmill", lifespan=lifespan)
    app.state.server = state
    install_error_handlers(app)
    if settings.api_key:
        app.add_middleware(APIKeyMiddleware, api_key=settings.api_key)
    served = settings.engine.model_name

    def check_model(name: str) -> None:
        if name != served:
            raise APIError(404, f"the model '{name}' does not exist; this server serves '{served}' (see /v1/models)",
                           param="model", code="model_not_found")

    @app.get("/health")
    async def health() -> Response:
        if state.engine.dead_reason:
            return JSONResponse({"status": "error", "detail": state.engine.dead_reason}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(state.engine), media_type="text/plain; version=0.0.4")

    def model_card() -> dict:
        return {"id": served, "object": "model", "created": state.started, "owned_by": "tokenmill",
                "max_model_len": state.pipeline.max_model_len}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str) -> dict:
        check_model(name)
        return model_card()

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        check_model(body.model)
        if body.tools:
            raise APIError(400, "tools: tool calling is not supported yet", param="tools")
        if body.response_format and body.response_format.get("type", "text") != "text":
            raise APIError(400, "only response_format {\"type\": \"text\"} is supported yet", param="response_format")
        try:
            text = state.tokenizer.apply_chat_template([m.as_template_input() for m in body.messages])
        except ChatTemplateError as exc:
            raise APIError(400, str(exc), param="messages") from exc
        prompt_ids = state.tokenizer.encode(text, add_special_tokens=False)
        return await _complete(body, prompt_ids, request, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        check_model(body.model)
        if body.echo:
            raise APIError(400, "echo is not supported", param="echo")
        if body.suffix:
            raise APIError(400, "suffix is not supported", param="suffix")
        prompt = body.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
            if len(prompt) != 1:
                raise APIError(400, "send one prompt per request (a list of several prompts is not supported)", param="prompt")
            prompt = prompt[0]
        if isinstance(prompt, str):
            prompt_ids = state.tokenizer.encode(prompt)
        else:
            vocab = state.tokenizer.vocab_size
            if any(t < 0 or t >= vocab for t in prompt):
                raise APIError(400, f"prompt token ids must be in [0, {vocab})", param="prompt")
            prompt_ids = list(prompt)
        if not prompt_ids:
            raise APIError(400, "the prompt is empty", param="prompt")
        return await _complete(body, prompt_ids, request, chat=False)

    async def _complete(body: ChatCompletionRequest | CompletionRequest, prompt_ids: list[int], request: Request,
                        chat: bool) -> Response:
        if body.logit_bias:
            raise APIError(400, "logit_bias is not supported yet", param="logit_bias")
        request_id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        max_tokens = body.requested_max_tokens or max(1, state.pipeline.max_model_len - len(prompt_ids))
        gen = Generation(request_id, prompt_ids, body.sampling_params(max_tokens, body.logprobs_count), body.stop)
        state.pipeline.admit(gen)
        shape = ResponseShape.new(chat, request_id, served)
        if body.stream:
            async def release() -> None:  # frees the admitted place if the client left before the body started
                state.pipeline.release(gen)

            return StreamingResponse(_stream(gen, shape, body.include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                                     background=BackgroundTask(release))
        try:
            return await _until_done_or_disconnect(_full(gen, shape), request)
        finally:
            state.pipeline.release(gen)

    async def _full(gen: Generation, shape: ResponseShape) -> Response:
        usage = Usage()
        logprobs = LogprobsBuilder(state.tokenizer, shape.chat) if gen.params.logprobs is not None else None
        parts: list[str] = []
        finish = None
        async with aclosing(state.pipeline.run(gen, usage)) as deltas:
            async for delta in deltas:
                parts.append(delta.text)
                if logprobs and delta.logprobs:
                    logprobs.add(delta.logprobs)
                finish = delta.finish_reason or finish
        body = shape.full("".join(parts), logprobs.result() if logprobs else None, finish, usage)
        return Response(_json.encode(body), media_type="application/json")

    async def _stream(gen: Generation, shape: ResponseShape, include_usage: bool) -> AsyncIterator[bytes]:
        usage = Usage()
        logprobs = LogprobsBuilder(state.tokenizer, shape.chat) if gen.params.logprobs is not None else None
        first = True
        try:
            async with aclosing(state.pipeline.run(gen, usage)) as deltas:
                async for delta in deltas:
                    lp = logprobs.add(delta.logprobs) if logprobs and delta.logprobs else None
                    if not delta.text and not delta.finish_reason and not first and lp is None:
                        continue  # text held back (a split character, a possible stop string): nothing to say yet
                    yield _sse(shape.chunk(delta.text, lp, delta.finish_reason, first=first, usage_field=include_usage))
                    first = False
        except APIError as exc:  # headers are gone: report in-band, as OpenAI does
            yield _sse(exc.body())
        if include_usage:
            yield _sse(shape.usage_chunk(usage))
        yield b"data: [DONE]\n\n"

    return app


def _sse(obj: dict) -> bytes:
    return b"data: " + _json.encode(obj) + b"\n\n"


async def _until_done_or_disconnect(work, request: Request) -> Response:
    """Await a non-streamed completion, cancelling it (and so the engine request) if the client leaves."""
    task = asyncio.ensure_future(work)

    async def client_gone() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(client_gone())
    done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        watcher.cancel()
        return task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return Response(status_code=499)
