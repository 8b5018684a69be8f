"""Per-request records and the summary figures, defined as `vllm bench serve` defines them.

- TTFT: request sent -> first content token received.
- TPOT (per request): (E2E - TTFT) / (output tokens - 1), for requests with more than one token.
- ITL: every gap between two consecutive content chunks, over all requests.
- Throughputs: completed requests, output tokens and prompt + output tokens, each over the wall
  time of the run.
- Goodput: completed requests per second that met every SLO given (TTFT, TPOT, E2E in ms).
Percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestRecord:
    """What one request did, in seconds from when it was sent."""

    ok: bool
    prompt_tokens: int = 0
    sent_at_s: float = 0.0  # from the start of the run
    output_tokens: int = 0  # server-reported usage where given, else content chunks counted
    streamed_tokens: int = 0  # content chunks counted in the stream
    ttft_s: float = 0.0
    e2e_s: float = 0.0
    itl_s: list[float] = field(default_factory=list)
    error_kind: str = ""  # e.g. http_429, http_500, timeout, stalled, connection, incomplete
    error: str = ""


@dataclass(slots=True)
class Distribution:
    mean: float
    median: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: list[float], scale: float = 1.0) -> Distribution:
        if not values:
            return cls(0.0, 0.0, 0.0, 0.0)
        ordered = sorted(v * scale for v in values)
        return cls(statistics.fmean(ordered), percentile(ordered, 50), percentile(ordered, 90), percentile(ordered, 99))


@dataclass(slots=True)
class SLO:
    """Latency targets in milliseconds; None means not checked."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    @classmethod
    def parse(cls, text: str) -> SLO:
        """From 'ttft=500,tpot=50' (any of ttft, tpot, e2e)."""
        slo = cls()
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or name not in ("ttft", "tpot", "e2e"):
                raise ValueError(f"bad SLO {part!r}: write ttft=MS, tpot=MS or e2e=MS, separated by commas")
            try:
                setattr(slo, f"{name}_ms", float(value))
            except ValueError:
                raise ValueError(f"bad SLO {part!r}: {value!r} is not a number of milliseconds") from None
        return slo

    def met_by(self, record: RequestRecord) -> bool:
        # a one-token answer has no TPOT and meets any TPOT target, as in vLLM
        checks = ((self.ttft_ms, record.ttft_s), (self.tpot_ms, tpot_s(record) or 0.0), (self.e2e_ms, record.e2e_s))
        return all(limit is None or value * 1000.0 <= limit for limit, value in checks)


@dataclass(slots=True)
class Summary:
    completed: int
    failed: int
    duration_s: float
    request_throughput: float  # completed requests / s
    output_throughput: float  # output tokens / s
    total_token_throughput: float  # (prompt + output) tokens / s
    total_prompt_tokens: int
    total_output_tokens: int
    total_streamed_tokens: int  # content chunks seen; equals total_output_tokens when a server streams a token a chunk
    ttft_ms: Distribution
    tpot_ms: Distribution
    itl_ms: Distribution
    e2e_ms: Distribution
    goodput: float | None  # requests / s meeting the SLO; None when no SLO was given
    errors: dict[str, int]  # error kind -> count
    error_examples: dict[str, str]  # error kind -> the first message of that kind


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, interpolating linearly."""
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def tpot_s(record: RequestRecord) -> float | None:
    if record.output_tokens < 2:
        return None
    return (record.e2e_s - record.ttft_s) / (record.output_tokens - 1)


def summarize(records: list[RequestRecord], duration_s: float, slo: SLO | None = None) -> Summary:
    good = [r for r in records if r.ok]
    duration = max(duration_s, 1e-9)
    prompt = sum(r.prompt_tokens for r in good)
    output = sum(r.output_tokens for r in good)
    tpots = [t for t in map(tpot_s, good) if t is not None]
    ms = 1000.0
    return Summary(
        completed=len(good),
        failed=len(records) - len(good),
        duration_s=duration_s,
        request_throughput=len(good) / duration,
        output_throughput=output / duration,
        total_token_throughput=(prompt + output) / duration,
        total_prompt_tokens=prompt,
        total_output_tokens=output,
        total_streamed_tokens=sum(r.streamed_tokens for r in good),
        ttft_ms=Distribution.of([r.ttft_s for r in good], ms),
        tpot_ms=Distribution.of(tpots, ms),
        itl_ms=Distribution.of([gap for r in good for gap in r.itl_s], ms),
        e2e_ms=Distribution.of([r.e2e_s for r in good], ms),
        goodput=None if slo is None else sum(slo.met_by(r) for r in good) / duration,
        errors=dict(Counter(r.error_kind for r in records if not r.ok)),
        error_examples={kind: r.error for r in reversed(records) if not r.ok for kind in [r.error_kind]},
    )
