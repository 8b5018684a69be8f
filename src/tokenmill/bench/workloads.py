"""The requests a benchmark sends: random, shared-prefix, chat and usecases workloads.

Prompt lengths are exact in the model's tokenizer when one is given (text is cut at a token
boundary and re-encoded to check); without one they are approximate and the server's usage is
what gets counted.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tokenmill.bench.corpus import CHAT_OPENERS, CHAT_SYSTEM_PROMPTS, CHAT_TOPICS, ENGLISH_WORDS, USECASE_INSTRUCTIONS, chinese_text

WORKLOADS = ("random", "shared-prefix", "chat", "usecases")


@dataclass(slots=True)
class BenchRequest:
    """One request to send: a completion prompt or chat messages."""

    max_tokens: int
    prompt: str | None = None  # /v1/completions
    messages: list[dict] | None = None  # /v1/chat/completions
    prompt_tokens: int = 0  # expected, 0 when not known
    scenario: str = ""


@dataclass(slots=True)
class WorkloadConfig:
    name: str = "random"
    num_requests: int = 100
    input_tokens: int = 100
    output_tokens: int = 128
    range_ratio: float = 0.0  # lengths uniform in [n * (1 - r), n * (1 + r)]
    num_prefixes: int = 4  # shared-prefix: distinct system prompts
    prefix_tokens: int = 512  # shared-prefix: length of each
    scale_to_context: int = 0  # usecases: shrink input lengths so the longest fits this context
    seed: int = 0
    extra: dict = field(default_factory=dict)


# (scenario, input lengths, output length range) of the content platform's request shapes
USECASES: list[tuple[str, list[int], tuple[int, int]]] = [
    ("interest_evaluation", [1500, 4800, 6700], (50, 50)),
    ("sentiment_analysis", [3000, 3600, 5400], (45, 45)),
    ("greeting_generation", [700, 1900], (14, 18)),
]


class PromptMaker:
    """Makes text of a given length in tokens, exactly when it has the model's tokenizer."""

    def __init__(self, encode: Callable[[str], list[int]] | None = None,
                 decode: Callable[[list[int]], str] | None = None) -> None:
        self.encode = encode
        self.decode = decode

    @property
    def exact(self) -> bool:
        return self.encode is not None and self.decode is not None

    def count(self, text: str) -> int:
        return len(self.encode(text)) if self.encode else 0

    def text(self, num_tokens: int, rng: random.Random, language: str = "en") -> str:
        if num_tokens <= 0:
            return ""
        if not self.exact:
            words = max(1, round(num_tokens / 1.3))  # about 1.3 tokens a word in English
            return _filler(words, rng, language)
        source = _filler(num_tokens * 2, rng, language)
        ids = self.encode(source)
        while len(ids) < num_tokens + 2:
            source += " " + _filler(num_tokens, rng, language)
            ids = self.encode(source)
        # cutting at a token boundary and decoding almost always re-encodes to the same count;
        # where a merge crosses the cut, a neighbouring cut does
        for cut in (num_tokens, num_tokens - 1, num_tokens + 1, num_tokens - 2, num_tokens + 2):
            text = self.decode(ids[:cut])
            if len(self.encode(text)) == num_tokens:
                return text
        return self.decode(ids[:num_tokens])

    def exact_prompt(self, head: str, body_tokens: int, rng: random.Random, language: str = "en") -> tuple[str, int]:
        """head followed by filler so that the whole is body_tokens long (when exact); returns text and count."""
        head_len = self.count(head)
        filler = self.text(max(1, body_tokens - head_len), rng, language)
        count = self.count(head + filler)
        if self.exact and count != body_tokens:  # a merge across the join: correct the filler once
            filler = self.text(max(1, body_tokens - head_len - (count - body_tokens)), rng, language)
            count = self.count(head + filler)
        return head + filler, count


def _filler(words: int, rng: random.Random, language: str) -> str:
    if language == "zh":
        return chinese_text(words, rng)
    return " ".join(rng.choice(ENGLISH_WORDS) for _ in range(words))


def _length(n: int, ratio: float, rng: random.Random) -> int:
    if ratio <= 0:
        return n
    return max(1, rng.randint(round(n * (1 - ratio)), round(n * (1 + ratio))))


def build_requests(config: WorkloadConfig, maker: PromptMaker) -> list[BenchRequest]:
    """The config's requests, the same every time for the same seed."""
    builders = {"random": _random, "shared-prefix": _shared_prefix, "chat": _chat, "usecases": _usecases}
    if config.name not in builders:
        raise ValueError(f"unknown workload {config.name!r}; choose one of {', '.join(WORKLOADS)}")
    rng = random.Random(config.seed)
    return builders[config.name](config, maker, rng)


def _random(config: WorkloadConfig, maker: PromptMaker, rng: random.Random) -> list[BenchRequest]:
    out = []
    for _ in range(config.num_requests):
        n = _length(config.input_tokens, config.range_ratio, rng)
        text = maker.text(n, rng)
        out.append(BenchRequest(_length(config.output_tokens, config.range_ratio, rng), prompt=text,
                                prompt_tokens=maker.count(text)))
    return out


def _shared_prefix(config: WorkloadConfig, maker: PromptMaker, rng: random.Random) -> list[BenchRequest]:
    prefixes = [maker.text(config.prefix_tokens, rng) for _ in range(config.num_prefixes)]
    out = []
    for i in range(config.num_requests):
        text = prefixes[i % len(prefixes)] + "\n\n" + maker.text(_length(config.input_tokens, config.range_ratio, rng), rng)
        out.append(BenchRequest(_length(config.output_tokens, config.range_ratio, rng), prompt=text,
                                prompt_tokens=maker.count(text), scenario=f"prefix-{i % len(prefixes)}"))
    return out


def _chat(config: WorkloadConfig, maker: PromptMaker, rng: random.Random) -> list[BenchRequest]:
    """Multi-turn conversations, half English and half Chinese, 0-3 earlier turns each (replies up to input_tokens)."""
    out = []
    for i in range(config.num_requests):
        language = "zh" if i % 2 else "en"
        messages = [{"role": "system", "content": rng.choice(CHAT_SYSTEM_PROMPTS[language])}]
        topics = CHAT_TOPICS[language]
        for _ in range(rng.randint(0, 3)):
            messages.append({"role": "user", "content": _chat_turn(rng, language, topics)})
            reply = rng.randint(max(1, config.input_tokens // 5), max(1, config.input_tokens))
            messages.append({"role": "assistant", "content": maker.text(reply, rng, language)})
        messages.append({"role": "user", "content": _chat_turn(rng, language, topics)})
        out.append(BenchRequest(_length(config.output_tokens, config.range_ratio, rng), messages=messages,
                                scenario=f"chat-{language}"))
    return out


def _chat_turn(rng: random.Random, language: str, topics: list[str]) -> str:
    return rng.choice(CHAT_OPENERS[language]).format(topic=rng.choice(topics))


def usecase_scale(config: WorkloadConfig) -> float:
    """The factor input lengths are multiplied by so that the longest usecase fits the context."""
    if not config.scale_to_context:
        return 1.0
    longest_input = max(n for _, lengths, _ in USECASES for n in lengths)
    longest_output = max(out[1] for _, _, out in USECASES)
    # 16 tokens of slack for a chat template or BOS the server may add
    return min(1.0, (config.scale_to_context - 16 - longest_output) / longest_input)


def _usecases(config: WorkloadConfig, maker: PromptMaker, rng: random.Random) -> list[BenchRequest]:
    """The three request shapes in equal shares (each ran at 30,000 requests a minute in production)."""
    scale = usecase_scale(config)
    out = []
    for i in range(config.num_requests):
        scenario, lengths, (lo, hi) = USECASES[i % len(USECASES)]
        target = max(16, round(rng.choice(lengths) * scale))
        text, count = maker.exact_prompt(USECASE_INSTRUCTIONS[scenario], target, rng,
                                         language="zh" if rng.random() < 0.5 else "en")
        out.append(BenchRequest(rng.randint(lo, hi), prompt=text, prompt_tokens=count, scenario=scenario))
    return out
