"""Build OpenAI response and stream-chunk bodies for chat and text completions."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tokenmill.engine.messages import Logprob
from tokenmill.engine.tokenizer import Tokenizer
from tokenmill.gateway.pipeline import Usage


@dataclass(slots=True)
class ResponseShape:
    """What differs between /v1/chat/completions and /v1/completions bodies."""

    chat: bool
    request_id: str
    model: str
    created: int

    @classmethod
    def new(cls, chat: bool, request_id: str, model: str) -> ResponseShape:
        return cls(chat, request_id, model, int(time.time()))

    def _envelope(self, chunk: bool) -> dict:
        kind = ("chat.completion" if self.chat else "text_completion") + (".chunk" if chunk and self.chat else "")
        return {"id": self.request_id, "object": kind, "created": self.created, "model": self.model}

    def chunk(self, text: str, logprobs: dict | None, finish_reason: str | None, *, first: bool = False,
              usage_field: bool = False) -> dict:
        if self.chat:
            delta = {"role": "assistant", "content": text} if first else ({"content": text} if text or not finish_reason else {})
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}
        body = self._envelope(True) | {"choices": [choice]}
        if usage_field:
            body["usage"] = None
        return body

    def usage_chunk(self, usage: Usage) -> dict:
        return self._envelope(True) | {"choices": [], "usage": usage.as_dict()}

    def full(self, text: str, logprobs: dict | None, finish_reason: str | None, usage: Usage) -> dict:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                      "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}
        return self._envelope(False) | {"choices": [choice], "usage": usage.as_dict()}


class LogprobsBuilder:
    """Accumulates per-token logprobs into the chat or the legacy completions format."""

    def __init__(self, tokenizer: Tokenizer, chat: bool) -> None:
        self.tokenizer = tokenizer
        self.chat = chat
        self.content: list[dict] = []
        self.tokens: list[str] = []
        self.token_logprobs: list[float] = []
        self.top: list[dict[str, float]] = []
        self.text_offset: list[int] = []
        self.offset = 0  # characters of completion text before the next token

    def _token(self, token_id: int) -> tuple[str, list[int]]:
        raw = self.tokenizer.token_bytes(token_id)
        return raw.decode("utf-8", errors="replace"), list(raw)

    def add(self, items: list[Logprob]) -> dict:
        """Record these tokens; return the logprobs object for just them (for a stream chunk)."""
        if self.chat:
            new = []
            for lp in items:
                text, raw = self._token(lp.token_id)
                top = [dict(zip(("token", "bytes"), self._token(t)), logprob=v) for t, v in lp.top]
                new.append({"token": text, "logprob": lp.logprob, "bytes": raw, "top_logprobs": top})
            self.content.extend(new)
            return {"content": new}
        tokens = [self._token(lp.token_id)[0] for lp in items]
        values = [lp.logprob for lp in items]
        top = [{self._token(t)[0]: v for t, v in lp.top} for lp in items]
        offsets = []
        for token in tokens:
            offsets.append(self.offset)
            self.offset += len(token)
        self.tokens.extend(tokens)
        self.token_logprobs.extend(values)
        self.top.extend(top)
        self.text_offset.extend(offsets)
        return {"tokens": tokens, "token_logprobs": values, "top_logprobs": top, "text_offset": offsets}

    def result(self) -> dict:
        if self.chat:
            return {"content": self.content}
        return {"tokens": self.tokens, "token_logprobs": self.token_logprobs, "top_logprobs": self.top,
                "text_offset": self.text_offset}
