"""Benchmark output: a readable table, the JSON file, and two JSON files compared side by side."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from tokenmill.bench.metrics import Summary

# (label, path into a run's summary, format) of the columns shown and compared
COLUMNS = [
    ("req/s", ("request_throughput",), "{:.2f}"),
    ("out tok/s", ("output_throughput",), "{:.1f}"),
    ("total tok/s", ("total_token_throughput",), "{:.1f}"),
    ("TTFT p50 ms", ("ttft_ms", "median"), "{:.0f}"),
    ("TTFT p99 ms", ("ttft_ms", "p99"), "{:.0f}"),
    ("TPOT p50 ms", ("tpot_ms", "median"), "{:.1f}"),
    ("TPOT p99 ms", ("tpot_ms", "p99"), "{:.1f}"),
    ("ITL p50 ms", ("itl_ms", "median"), "{:.1f}"),
    ("E2E p50 ms", ("e2e_ms", "median"), "{:.0f}"),
]
MARKDOWN_COLUMNS = ("out tok/s", "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms")


def summary_lines(label: str, summary: Summary) -> list[str]:
    """The figures of one load level, as the table printed while a sweep runs."""
    s = summary
    lines = [f"== {label}: {s.completed} completed, {s.failed} failed in {s.duration_s:.1f} s",
             f"   throughput  {s.request_throughput:8.2f} req/s  {s.output_throughput:9.1f} output tok/s  "
             f"{s.total_token_throughput:9.1f} total tok/s"]
    if s.goodput is not None:
        lines.append(f"   goodput     {s.goodput:8.2f} req/s within the SLO")
    lines.append(f"   {'ms':<6} {'mean':>9} {'median':>9} {'p90':>9} {'p99':>9}")
    for name, dist in (("TTFT", s.ttft_ms), ("TPOT", s.tpot_ms), ("ITL", s.itl_ms), ("E2E", s.e2e_ms)):
        lines.append(f"   {name:<6} {dist.mean:9.1f} {dist.median:9.1f} {dist.p90:9.1f} {dist.p99:9.1f}")
    for kind, n in sorted(s.errors.items()):
        lines.append(f"   error {kind} x{n}: {s.error_examples.get(kind, '')[:160]}")
    return lines


def write_json(path: str | Path, config: dict, runs: list[dict]) -> None:
    Path(path).write_text(json.dumps({"config": config, "runs": runs}, indent=2, default=str) + "\n")


def run_entry(label: str, load: object, summary: Summary) -> dict:
    return {"label": label, "load": asdict(load), "summary": asdict(summary)}


def _value(run: dict, path: tuple[str, ...]) -> float:
    value = run["summary"]
    for key in path:
        value = value[key]
    return float(value)


def compare(path_a: str | Path, path_b: str | Path, markdown: bool = False) -> str:
    """Runs of the two files matched by load, each figure with the ratio A / B."""
    a, b = (json.loads(Path(p).read_text()) for p in (path_a, path_b))
    name_a = a["config"].get("name") or Path(path_a).stem
    name_b = b["config"].get("name") or Path(path_b).stem
    runs_b = {run["label"]: run for run in b["runs"]}
    columns = [c for c in COLUMNS if c[0] in MARKDOWN_COLUMNS] if markdown else COLUMNS
    header = ["load"] + [f"{col} {who}" for col, _, _ in columns for who in (name_a, name_b, "ratio")]
    rows = []
    for run_a in a["runs"]:
        run_b = runs_b.get(run_a["label"])
        if run_b is None:
            continue
        row = [run_a["label"]]
        for _, path, fmt in columns:
            va, vb = _value(run_a, path), _value(run_b, path)
            row += [fmt.format(va), fmt.format(vb), f"{va / vb:.2f}x" if vb else "-"]
        rows.append(row)
    if not rows:
        return f"no load level appears in both {path_a} and {path_b}"
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    # one block per load: figures down, the two servers and the ratio across
    out = [f"ratio = {name_a} / {name_b}"]
    for row in rows:
        out.append(f"== {row[0]}")
        out.append(f"   {'':<14}{name_a:>14}{name_b:>14}{'ratio':>9}")
        for i, (col, _, _) in enumerate(COLUMNS):
            va, vb, ratio = row[1 + 3 * i: 4 + 3 * i]
            out.append(f"   {col:<14}{va:>14}{vb:>14}{ratio:>9}")
    return "\n".join(out)
