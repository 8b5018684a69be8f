"""Models served by another OpenAI-compatible server: requests proxied, streaming and usage intact.

The request goes on as the client sent it, with the upstream's model name and key; the answer
comes back with our model name. Streams always ask the upstream for usage, so the ledger gets
the real counts; the client sees the usage chunk only if it asked for it. As for our own models,
a request that ends normally is settled and committed to the ledger before the client hears the
end: the chunk that carries the finish reason is held until the upstream's usage has arrived.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tokenmill.api.errors import APIError
from tokenmill.api.metrics import Metrics
from tokenmill.catalog.entry import ModelEntry
from tokenmill.gateway.accounting import Account, Accounting
from tokenmill.gateway.pipeline import screen_output, seconds_since

if TYPE_CHECKING:  # moderation loads only where it is configured
    from tokenmill.moderation.output import OutputCheck

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0  # between two chunks of an answer
CHARS_PER_TOKEN = 3  # to reserve TPM for a prompt we cannot tokenize: generous, settled to the real count
DEFAULT_MAX_TOKENS = 4096  # reserved when the request names no max_tokens


def estimated_tokens(chars: int) -> int:
    """Tokens in a text of this many characters, erring high, where the model's tokenizer is not at hand."""
    return chars // CHARS_PER_TOKEN + 1


@dataclass(slots=True)
class Proxied:
    """What one proxied request has used so far."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    first_token_s: float | None = None

    def take_usage(self, usage: dict | None) -> None:
        if not usage:
            return
        self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        self.completion_tokens = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        self.cached_tokens = int(details.get("cached_tokens") or 0)


class UpstreamModel:
    def __init__(self, entry: ModelEntry, metrics: Metrics) -> None:
        assert entry.upstream is not None
        self.entry = entry
        self.metrics = metrics
        self.upstream = entry.upstream
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))

    @property
    def name(self) -> str:
        return self.entry.name

    def card(self, created: int) -> dict:
        return {"id": self.name, "object": "model", "created": created, "owned_by": "upstream",
                "aliases": list(self.entry.aliases), "max_model_len": self.entry.context_length or None}

    async def close(self) -> None:
        await self._client.aclose()

    async def _screen(self, check: OutputCheck, obj: dict, finish_reason: str | None) -> str | None:
        """Moderate the text an answer or chunk carries, in place; returns its finish reason (the filter's, if it cut)."""
        text, reason = await screen_output(check, _choice_text(obj) or "", finish_reason, self.metrics)
        _set_choice_text(obj, text)
        if reason == "content_filter":
            obj["choices"][0]["finish_reason"] = reason
        return reason

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.upstream.api_key_env:
            key = os.environ.get(self.upstream.api_key_env)
            if not key:
                raise APIError(503, f"model '{self.name}' needs its upstream key in ${self.upstream.api_key_env}, "
                                    "which is not set on this server", code="upstream_unavailable")
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def complete(self, path: str, payload: dict, account: Account, accounting: Accounting,
                       output_check: OutputCheck | None = None) -> Response:
        """Forward one /chat/completions or /completions request and answer the client as our own model, its
        output moderated as our own models' is when output_check is given."""
        stream = bool(payload.get("stream"))
        client_wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens") or DEFAULT_MAX_TOKENS
        prompt = payload.get("messages") if "messages" in payload else payload.get("prompt")
        estimate = estimated_tokens(len(json.dumps(prompt, ensure_ascii=False)))
        await accounting.admit(account, estimate, int(max_tokens))
        body = {**payload, "model": self.upstream.model}
        if stream:
            body["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        request_id = f"{'chatcmpl' if 'messages' in payload else 'cmpl'}-{uuid.uuid4().hex}"
        started = time.perf_counter()
        used = Proxied()
        try:
            request = self._client.build_request("POST", f"{self.upstream.base_url}{path}", json=body,
                                                 headers=self._headers())
            answer = await self._client.send(request, stream=stream)
        except APIError:
            await self._settle(accounting, account, request_id, "error", used, started)
            raise
        except httpx.HTTPError as exc:
            await self._settle(accounting, account, request_id, "error", used, started)
            raise APIError(502, f"model '{self.name}': its upstream {self.upstream.base_url} could not be reached "
                                f"({type(exc).__name__})", code="upstream_unavailable") from exc
        if answer.status_code >= 400:
            await answer.aread()
            await answer.aclose()
            await self._settle(accounting, account, request_id, "error", used, started)
            return self._upstream_error(answer)
        if not stream:
            try:
                data = answer.json()
            except ValueError as exc:
                await self._settle(accounting, account, request_id, "error", used, started)
                raise APIError(502, f"model '{self.name}': its upstream answered with something that is not JSON",
                               code="upstream_error") from exc
            used.take_usage(data.get("usage"))
            used.finish_reason = _finish_reason(data)
            if output_check is not None and _choice_text(data) is not None:
                used.finish_reason = await self._screen(output_check, data, used.finish_reason or "stop")
            await self._settle(accounting, account, request_id, _outcome(used.finish_reason), used, started, durable=True)
            data["model"] = self.name
            return JSONResponse(data, headers=account.headers())
        return StreamingResponse(self._relay(answer, client_wants_usage, account, accounting, request_id, used, started,
                                             output_check),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **account.headers()})

    async def _relay(self, answer: httpx.Response, client_wants_usage: bool, account: Account, accounting: Accounting,
                     request_id: str, used: Proxied, started: float,
                     output_check: OutputCheck | None) -> AsyncIterator[bytes]:
        held: list[bytes] = []  # the finish chunk and what follows, until the ledger has the record
        settled = False
        try:
            async for line in answer.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    continue
                chunk["model"] = self.name
                if chunk.get("usage"):
                    used.take_usage(chunk["usage"])
                if not client_wants_usage:
                    chunk.pop("usage", None)
                choices = chunk.get("choices") or []
                if not choices and not client_wants_usage:
                    continue  # the usage chunk we asked for on our own account
                if choices and used.first_token_s is None:
                    used.first_token_s = time.perf_counter()
                reason = _finish_reason(chunk)
                if output_check is not None and _choice_text(chunk) is not None:
                    reason = await self._screen(output_check, chunk, reason)
                if choices and reason is None and not held:
                    used.completion_tokens += 1  # a running count, replaced by the upstream's usage at the end
                    yield _sse(chunk)
                    continue
                used.finish_reason = used.finish_reason or reason
                held.append(_sse(chunk))
                if reason == "content_filter":
                    break  # the filter ended it: read no more of the upstream's answer
            await self._settle(accounting, account, request_id, _outcome(used.finish_reason), used, started,
                               durable=True)
            settled = True
            for chunk in held:
                yield chunk
            yield b"data: [DONE]\n\n"
        finally:
            await answer.aclose()
            if not settled:  # the client left, or the upstream broke off: count what was produced
                outcome = "aborted" if used.finish_reason is None else _outcome(used.finish_reason)
                accounting.finish_later(account, request_id, outcome, used.prompt_tokens, used.cached_tokens,
                                        used.completion_tokens, seconds_since(started, used.first_token_s),
                                        time.perf_counter() - started)

    async def _settle(self, accounting: Accounting, account: Account, request_id: str, outcome: str, used: Proxied,
                      started: float, durable: bool = False) -> None:
        await accounting.finish(account, request_id, outcome, used.prompt_tokens, used.cached_tokens,
                                used.completion_tokens, seconds_since(started, used.first_token_s),
                                time.perf_counter() - started, durable=durable)

    def _upstream_error(self, answer: httpx.Response) -> Response:
        """The upstream's own error for what the client sent (4xx but a bad key); a 502 for the rest."""
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code in (401, 403):
            raise APIError(502, f"model '{self.name}': its upstream refused this server's key; the operator must "
                                f"check ${self.upstream.api_key_env or '(no key configured)'}", code="upstream_error")
        if 400 <= answer.status_code < 500 and isinstance(body, dict) and "error" in body:
            headers = {k: v for k, v in answer.headers.items() if k.lower() == "retry-after"}
            return JSONResponse(body, status_code=answer.status_code, headers=headers)
        raise APIError(502, f"model '{self.name}': its upstream failed with HTTP {answer.status_code}",
                       code="upstream_error")


def _choice_text(obj: dict) -> str | None:
    """The text of the first choice of a chat or completion answer, or of a stream chunk; None where there is none."""
    choices = obj.get("choices") or []
    if not choices:
        return None
    choice = choices[0]
    holder = choice.get("delta") or choice.get("message")
    if isinstance(holder, dict):
        return holder.get("content") or ""
    return choice.get("text") or ""


def _set_choice_text(obj: dict, text: str) -> None:
    choice = obj["choices"][0]
    holder = choice.get("delta") or choice.get("message")
    if isinstance(holder, dict):
        holder["content"] = text
    else:
        choice["text"] = text


def _finish_reason(obj: dict) -> str | None:
    choices = obj.get("choices") or []
    return choices[0].get("finish_reason") if choices else None


def _outcome(finish_reason: str | None) -> str:
    return finish_reason if finish_reason in ("stop", "length", "content_filter") else "stop"


def _sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"
