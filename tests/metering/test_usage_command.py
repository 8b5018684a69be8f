"""`tokenmill usage` against a real SQLite file, run as a user would."""

import json
import subprocess
import sys


def usage_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokenmill.cli", "usage", *args], capture_output=True, text=True,
                          timeout=60)


def test_usage_prints_a_table_with_costs_in_currency(known_usage, db_url):
    out = usage_cli("--database", db_url, "--group-by", "tenant,model")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["TENANT", "MODEL", "REQUESTS", "PROMPT", "CACHED", "COMPLETION", "COST"]
    assert lines[1].split() == ["acme", "a", "2", "300", "40", "150", "0.003000"]
    assert lines[-1].split() == ["TOTAL", "6", "430", "50", "181", "0.003900"]


def test_usage_json_for_one_tenant_by_name(known_usage, db_url):
    out = usage_cli("--database", db_url, "--group-by", "day", "--tenant", "acme", "--since", "2025-01-02", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"day": "2025-01-02", "requests": 2, "prompt_tokens": 250, "cached_tokens": 10,
                                       "completion_tokens": 120, "cost_micros": 2500, "cost": "0.002500"}]


def test_usage_health_as_text_and_json(known_usage, db_url):
    out = usage_cli("--database", db_url, "--health", "--ttft-slo", "200", "--tpot-slo", "50")
    assert out.returncode == 0, out.stderr
    lines = {line.split("  ")[0]: line.split("  ")[-1].strip() for line in out.stdout.splitlines() if "  " in line}
    assert lines["wasted tokens"].startswith("150 (24.5%")
    assert lines["cost per 1k delivered"] == "0.025828"
    assert lines["TTFT <= 200 ms"] == "66.7% of 3 completed requests"
    out = usage_cli("--database", db_url, "--health", "--json")
    assert json.loads(out.stdout)["delivered_tokens"] == 151


def test_usage_explains_bad_input(db_url):
    out = usage_cli("--database", db_url, "--group-by", "colour")
    assert out.returncode == 2 and "choose from tenant, model, scenario, outcome, day" in out.stderr
    out = usage_cli("--database", db_url, "--since", "yesterday")
    assert out.returncode == 1 and "YYYY-MM-DD" in out.stderr
