"""The OpenAI-compatible HTTP app. No business logic: it parses, calls the pipeline, formats."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, aclosing
from typing import TYPE_CHECKING

import msgspec
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from tokenmill.admission.controller import Admission
from tokenmill.admission.memory import MemoryLimiter
from tokenmill.admission.redis_limiter import RedisLimiter
from tokenmill.api.auth import AuthMiddleware
from tokenmill.api.errors import APIError, install_error_handlers
from tokenmill.api.metrics import Metrics
from tokenmill.api.responses import LogprobsBuilder, ResponseShape
from tokenmill.api.schemas import ChatCompletionRequest, CompletionRequest, ModerationRequest
from tokenmill.config import ServeSettings
from tokenmill.engine.tokenizer import ChatTemplateError
from tokenmill.db.engine import open_database
from tokenmill.gateway.accounting import Account, Accounting
from tokenmill.gateway.models import ServedModel, ServedModels
from tokenmill.gateway.upstream import UpstreamModel, estimated_tokens
from tokenmill.gateway.pipeline import Generation, Usage
from tokenmill.metering.ledger import Ledger
from tokenmill.routing.policy import ROUTES, NoRoute
from tokenmill.routing.router import ROUTING_MAX_TOKENS, Router, RoutedRequest, RoutingUnavailable
from tokenmill.metering.reports import health_report, usage_report
from tokenmill.tenancy.admin import admin_guard, admin_router
from tokenmill.tenancy.records import Principal
from tokenmill.tenancy.store import TenancyNotFound, TenancyStore

if TYPE_CHECKING:  # moderation loads only where it is configured
    from tokenmill.moderation.output import OutputCheck

MODERATION_MODEL = "tokenmill-moderation"  # the "model" /v1/moderations answers with
_json = msgspec.json.Encoder()


class ServerState:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.db = open_database(settings.database_url)
        self.store = TenancyStore(self.db)
        self.ledger = Ledger(self.db) if settings.ledger else None
        self.limiter = RedisLimiter(settings.redis_url) if settings.redis_url else MemoryLimiter()
        self.accounting = Accounting(self.store, Admission(self.limiter), self.ledger, self.metrics,
                                     operator_key=settings.api_key, keys_required=bool(settings.api_key or settings.admin_key))
        self.models = ServedModels(settings.models, self.metrics, settings.max_queued_requests, self.accounting,
                                   settings.engine_stand_in_tokens)
        self.router = Router(self.models)
        self.moderator = None
        if settings.moderation is not None:  # loaded only where configured
            from tokenmill.moderation.moderator import Moderator

            self.moderator = Moderator(settings.moderation)
        self.started = int(time.time())

    async def start(self) -> None:
        # the classifier (~1 s, ~150 MB) loads up front only where "auto" has models to choose between;
        # a one-model server loads it on its first request for "auto"
        preload = [asyncio.to_thread(self.router.load)] if len(self.models.all()) > 1 else []
        if self.moderator is not None:
            preload.append(asyncio.to_thread(self.moderator.load))
        await asyncio.gather(self.models.start(), *preload)
        if self.ledger is not None:  # budgets carry over restarts: start them at what the ledger says was spent
            await self.accounting.admission.seed_budgets(self.ledger.totals_by_scope())

    async def stop(self) -> None:
        try:
            await self.models.stop()
            await self.accounting.drain()
        finally:
            if self.ledger is not None:
                self.ledger.close()
            if self.moderator is not None:
                self.moderator.close()
            await self.limiter.close()
            self.db.dispose()


def create_app(settings: ServeSettings) -> FastAPI:
    """The app; its lifespan starts the engine processes and stops them on shutdown."""
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="tokenmill", lifespan=lifespan)
    app.state.server = state
    install_error_handlers(app)
    app.add_middleware(AuthMiddleware, accounting=state.accounting)
    if settings.admin_key or settings.api_key:
        app.include_router(admin_router(state.store, settings.admin_key or settings.api_key))
    @app.get("/health")
    async def health() -> Response:
        if state.models.dead_reason:
            return JSONResponse({"status": "error", "detail": state.models.dead_reason}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(state.models), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict:
        routes = [{"id": name, "object": "model", "created": state.started, "owned_by": "tokenmill-router",
                   "aliases": [], "max_model_len": None} for name in ROUTES]
        if state.router.unavailable is not None or len(state.models.all()) < 2:
            routes = []  # with one model there is nothing to choose (a request for "auto" still gets it)
        return {"object": "list", "data": state.models.cards(state.started) + routes}

    @app.get("/v1/models/{name:path}")
    async def model(name: str) -> dict:
        return state.models.resolve(name).card(state.started)

    @app.get("/v1/usage")
    async def usage(request: Request, group_by: str = "model,day", since: str | None = None,
                    until: str | None = None, tenant: str | None = None, health: bool = False,
                    ttft_slo_ms: float | None = None, tpot_slo_ms: float | None = None) -> dict:
        """A key sees its own tenant's usage; the operator sees every tenant's (or one, with ?tenant=)."""
        principal: Principal | None = request.state.principal
        try:
            tenant_id = principal.tenant.id if principal else (state.store.get_tenant(tenant).id if tenant else None)
        except TenancyNotFound as exc:
            raise APIError(404, str(exc), param="tenant") from exc
        if health:
            return {"object": "usage.health", "data": health_report(state.db, tenant_id, ttft_slo_ms, tpot_slo_ms)}
        groups = [g.strip() for g in group_by.split(",") if g.strip()]
        try:
            rows = usage_report(state.db, groups, tenant_id, since, until)
        except ValueError as exc:
            raise APIError(400, str(exc), param="group_by") from exc
        return {"object": "list", "data": rows}

    @app.post("/v1/moderations")
    async def moderations(body: ModerationRequest, request: Request) -> dict:
        if state.moderator is None:
            raise APIError(404, "moderation is not configured on this server: start it with --moderation "
                                "(or a 'moderation:' section in --config)", code="moderation_off")
        screen = state.moderator.screen(_tenant_name(request))
        texts = [body.input] if isinstance(body.input, str) else body.input
        verdicts = [await state.moderator.check_async(text, screen) for text in texts]
        return {"id": "modr-" + uuid.uuid4().hex, "model": MODERATION_MODEL, "results": [v.as_dict() for v in verdicts]}

    if state.moderator is not None and (settings.admin_key or settings.api_key):
        @app.post("/admin/moderation/reload", dependencies=[Depends(admin_guard(settings.admin_key or settings.api_key))])
        async def reload_moderation() -> dict:
            """Read the term lists again (after editing the files); a bad file keeps the lists in use."""
            try:
                counts = await asyncio.to_thread(state.moderator.reload)
            except (OSError, ValueError) as exc:
                raise APIError(400, f"the term lists were not reloaded (the old ones stay in use): {exc}",
                               code="moderation_reload_failed") from exc
            return {"object": "moderation.lists", "terms": counts}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        return await _answer(body, request, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await _answer(body, request, chat=False)

    async def _answer(body: ChatCompletionRequest | CompletionRequest, request: Request, chat: bool) -> Response:
        """Answer with the model the request names, or, for "auto", with the one the router picks (falling back
        to the next when one is overloaded, down or too short before any token was sent)."""
        if not Router.handles(body.model):
            return await _answer_with(state.models.resolve(body.model), body, request, chat, "")
        principal: Principal | None = request.state.principal
        routed = await _route(body, chat, principal.tenant.route_floor if principal else None)
        last_error: APIError | None = None
        failed: list[str] = []
        for entry in routed.route.ranked:
            served = state.models.resolve(entry.name)
            try:
                response = await _answer_with(served, body, request, chat, routed.route.scenario)
            except APIError as exc:
                if exc.status in (502, 503) or exc.code in ("context_length_exceeded", "chat_unsupported"):
                    last_error = exc
                    failed.append(f"{served.name} (HTTP {exc.status})")
                    continue
                raise
            response.headers["x-tokenmill-route"] = routed.header(served.name, failed)
            return response
        assert last_error is not None
        raise last_error

    async def _route(body: ChatCompletionRequest | CompletionRequest, chat: bool,
                     floor: float | None) -> RoutedRequest:
        if chat:
            messages = [m.as_template_input() for m in body.messages]
            prompt, chars = None, sum(len(m["content"]) for m in messages)
        else:
            given = body.prompt
            if isinstance(given, list) and len(given) == 1 and isinstance(given[0], str):
                given = given[0]  # a list of one prompt, as /v1/completions accepts it
            messages, prompt = None, given if isinstance(given, str) else ""  # token ids: nothing to read
            chars = len(given)
        try:
            return await state.router.route(body.model, estimated_tokens(chars),
                                            body.requested_max_tokens or ROUTING_MAX_TOKENS, messages, prompt, floor)
        except NoRoute as exc:
            raise APIError(400, str(exc), param="model", code="no_route") from exc
        except RoutingUnavailable as exc:
            raise APIError(503, str(exc), param="model", code="routing_unavailable") from exc

    async def _answer_with(served: ServedModel | UpstreamModel, body: ChatCompletionRequest | CompletionRequest,
                           request: Request, chat: bool, scenario: str) -> Response:
        account = Account(request.state.principal, served.name, served.entry.prices, scenario=scenario)
        if isinstance(served, UpstreamModel):
            if state.moderator is not None and not chat and _token_id_prompt(body.prompt):
                # the upstream's tokenizer is not ours: these ids cannot be read back into text to check
                raise APIError(400, f"model {served.name!r} is served upstream and this server moderates prompts, "
                                    "which it cannot do for token ids: send the prompt as text",
                               param="prompt", code="moderation_needs_text")
            text = _prompt_text(body, chat, None)
            await _moderate_prompt(text, account, estimated_tokens(len(text)), request)
            return await served.complete("/chat/completions" if chat else "/completions", await request.json(),
                                         account, state.accounting, _output_check(request))
        prompt_ids = _chat_prompt(served, body) if chat else _text_prompt(served, body)
        await _moderate_prompt(_prompt_text(body, chat, served, prompt_ids), account, len(prompt_ids), request)
        return await _complete(served, body, prompt_ids, request, chat, account)

    def _token_id_prompt(prompt: object) -> bool:
        return isinstance(prompt, list) and bool(prompt) and not isinstance(prompt[0], str)

    def _tenant_name(request: Request) -> str | None:
        principal: Principal | None = request.state.principal
        return principal.tenant.name if principal else None

    def _prompt_text(body: ChatCompletionRequest | CompletionRequest, chat: bool, served: ServedModel | None,
                     prompt_ids: list[int] | None = None) -> str:
        """What the client wrote (every turn but the system prompt, which is the operator's app's own)."""
        if chat:
            turns = (m.as_template_input() for m in body.messages)
            return "\n".join(t["content"] for t in turns if t["role"] != "system")
        prompt = body.prompt
        if _token_id_prompt(prompt):
            return served.tokenizer.decode(prompt_ids) if served is not None and prompt_ids else ""
        return prompt if isinstance(prompt, str) else "\n".join(prompt)

    async def _moderate_prompt(text: str, account: Account, prompt_tokens: int, request: Request) -> None:
        """The moderate-prompt stage: a refused prompt gets a 400 and never reaches an engine."""
        if state.moderator is None or getattr(request.state, "prompt_moderated", None) == text:
            return
        screen = state.moderator.screen(_tenant_name(request))
        verdict = await state.moderator.check_async(text, screen)
        if verdict.refuses(screen.policy.action):
            state.metrics.observe_moderation("prompt", verdict)
            state.accounting.refused(account, "content_filter", prompt_tokens)
            raise APIError(400, f"the prompt was refused by content moderation: {verdict.reason}",
                           param="messages", code="content_filter")
        request.state.prompt_moderated = text

    def _output_check(request: Request) -> OutputCheck | None:
        if state.moderator is None:
            return None
        from tokenmill.moderation.output import OutputCheck

        return OutputCheck(state.moderator, state.moderator.screen(_tenant_name(request)))

    def _chat_prompt(served: ServedModel, body: ChatCompletionRequest) -> list[int]:
        if body.tools:
            raise APIError(400, "tools: tool calling is not supported yet", param="tools")
        if body.response_format and body.response_format.get("type", "text") != "text":
            raise APIError(400, "only response_format {\"type\": \"text\"} is supported yet", param="response_format")
        if served.tokenizer.chat_template is None:  # a base model: the router passes it over for chat
            raise APIError(400, f"model '{served.name}' has no chat template, so it cannot take chat messages; send a "
                                "plain prompt to /v1/completions instead", param="messages", code="chat_unsupported")
        try:
            text = served.tokenizer.apply_chat_template([m.as_template_input() for m in body.messages])
        except ChatTemplateError as exc:
            raise APIError(400, str(exc), param="messages") from exc
        return served.tokenizer.encode(text, add_special_tokens=False)

    def _text_prompt(served: ServedModel, body: CompletionRequest) -> list[int]:
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
            prompt_ids = served.tokenizer.encode(prompt)
        else:
            vocab = served.tokenizer.vocab_size
            if any(t < 0 or t >= vocab for t in prompt):
                raise APIError(400, f"prompt token ids must be in [0, {vocab})", param="prompt")
            prompt_ids = list(prompt)
        if not prompt_ids:
            raise APIError(400, "the prompt is empty", param="prompt")
        return prompt_ids

    async def _complete(served: ServedModel, body: ChatCompletionRequest | CompletionRequest, prompt_ids: list[int],
                        request: Request, chat: bool, account: Account) -> Response:
        if body.logit_bias:
            raise APIError(400, "logit_bias is not supported yet", param="logit_bias")
        request_id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        pipeline = served.pipeline
        max_tokens = body.requested_max_tokens or max(1, pipeline.max_model_len - len(prompt_ids))
        gen = Generation(request_id, prompt_ids, body.sampling_params(max_tokens, body.logprobs_count), body.stop,
                         account=account, output_check=_output_check(request))
        pipeline.admit(gen)
        try:
            await state.accounting.admit(account, len(prompt_ids), max_tokens)
        except APIError:
            pipeline.release(gen)
            raise
        shape = ResponseShape.new(chat, request_id, served.name)
        if body.stream:
            async def release() -> None:  # frees the admitted place if the client left before the body started
                pipeline.release(gen)

            return StreamingResponse(_stream(served, gen, shape, body.include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **account.headers()},
                                     background=BackgroundTask(release))
        try:
            return await _until_done_or_disconnect(_full(served, gen, shape), request)
        finally:
            pipeline.release(gen)

    async def _full(served: ServedModel, gen: Generation, shape: ResponseShape) -> Response:
        usage = Usage()
        logprobs = LogprobsBuilder(served.tokenizer, shape.chat) if gen.params.logprobs is not None else None
        parts: list[str] = []
        finish = None
        async with aclosing(served.pipeline.run(gen, usage)) as deltas:
            async for delta in deltas:
                parts.append(delta.text)
                if logprobs and delta.logprobs:
                    logprobs.add(delta.logprobs)
                finish = delta.finish_reason or finish
        body = shape.full("".join(parts), logprobs.result() if logprobs else None, finish, usage)
        return Response(_json.encode(body), media_type="application/json",
                        headers=gen.account.headers() if gen.account else None)

    async def _stream(served: ServedModel, gen: Generation, shape: ResponseShape,
                      include_usage: bool) -> AsyncIterator[bytes]:
        usage = Usage()
        logprobs = LogprobsBuilder(served.tokenizer, shape.chat) if gen.params.logprobs is not None else None
        first = True
        try:
            async with aclosing(served.pipeline.run(gen, usage)) as deltas:
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
