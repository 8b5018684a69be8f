"""Usage and health reports on a known set of records (see the known_usage fixture for the figures)."""

import json

import pytest

from tokenmill.metering.reports import health_report, usage_report


def test_usage_by_tenant_shows_names_where_known_and_sums_each_group(known_usage):
    assert usage_report(known_usage, ["tenant"]) == [
        {"tenant": "acme", "requests": 3, "prompt_tokens": 350, "cached_tokens": 50, "completion_tokens": 170,
         "cost_micros": 3500, "cost": "0.003500"},
        {"tenant": "ten_2", "requests": 3, "prompt_tokens": 80, "cached_tokens": 0, "completion_tokens": 11,
         "cost_micros": 400, "cost": "0.000400"},
    ]


def test_usage_by_several_keys_and_the_total(known_usage):
    rows = usage_report(known_usage, ["model", "day"])
    assert [(r["model"], r["day"], r["requests"], r["cost_micros"]) for r in rows] == [
        ("a", "2025-01-01", 1, 1000), ("a", "2025-01-02", 2, 2100), ("a", "2025-01-03", 1, 300),
        ("b", "2025-01-02", 1, 500), ("b", "2025-01-03", 1, 0)]
    assert usage_report(known_usage, []) == [
        {"requests": 6, "prompt_tokens": 430, "cached_tokens": 50, "completion_tokens": 181, "cost_micros": 3900,
         "cost": "0.003900"}]
    outcomes = {r["outcome"]: r["requests"] for r in usage_report(known_usage, ["outcome"])}
    assert outcomes == {"aborted": 1, "error": 1, "length": 1, "rejected": 1, "stop": 2}


def test_usage_filters_by_tenant_and_days(known_usage):
    rows = usage_report(known_usage, ["scenario"], tenant_id="ten_1", since_day="2025-01-02", until_day="2025-01-02")
    assert [(r["scenario"], r["requests"], r["completion_tokens"]) for r in rows] == [("chat", 1, 100), ("code", 1, 20)]
    assert usage_report(known_usage, ["tenant"], since_day="2025-02-01") == []


def test_usage_refuses_unknown_groups_and_bad_days(known_usage):
    with pytest.raises(ValueError, match="choose from tenant, model, scenario, outcome, day"):
        usage_report(known_usage, ["colour"])
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        usage_report(known_usage, ["day"], since_day="1/2/2025")


def test_health_report_figures(known_usage):
    report = health_report(known_usage, ttft_slo_ms=200, tpot_slo_ms=50)
    json.dumps(report)  # the HTTP endpoint returns it as it is
    assert report["requests"] == 6
    assert report["tokens"] == 611
    assert [(s["name"], s["tokens"]) for s in report["by_scenario"]] == [("chat", 490), ("code", 81), ("", 40)]
    assert [(s["name"], s["tokens"]) for s in report["by_outcome"]] == [
        ("length", 300), ("stop", 161), ("aborted", 70), ("error", 40), ("rejected", 40)]
    assert report["by_scenario"][0]["share"] == pytest.approx(490 / 611)
    assert report["wasted_tokens"] == 150 and report["wasted_share"] == pytest.approx(150 / 611)
    assert report["cached_tokens"] == 50 and report["cached_share"] == pytest.approx(50 / 430)
    assert report["delivered_tokens"] == 151
    assert report["cost_micros"] == 3900
    assert report["cost_per_1k_delivered_micros"] == 25828  # 3900 * 1000 / 151 = 25827.8
    assert report["cost_per_1k_delivered"] == "0.025828"
    slo = report["slo"]
    assert slo["completed_requests"] == 3
    assert (slo["ttft_met"], slo["tpot_met"]) == (2, 2)  # r4's TTFT 250 misses; r2's TPOT 60 misses
    assert slo["ttft_attainment"] == pytest.approx(2 / 3) and slo["tpot_attainment"] == pytest.approx(2 / 3)


def test_health_slo_targets_are_inclusive_and_optional(known_usage):
    report = health_report(known_usage, tenant_id="ten_1", ttft_slo_ms=150, tpot_slo_ms=60)
    assert report["slo"]["ttft_attainment"] == 1.0 and report["slo"]["tpot_attainment"] == 1.0
    report = health_report(known_usage)
    assert report["slo"]["ttft_attainment"] is None and report["slo"]["tpot_attainment"] is None


def test_health_of_an_empty_ledger(engine):
    report = health_report(engine, ttft_slo_ms=100)
    assert report["requests"] == 0 and report["cost_per_1k_delivered"] is None
    assert report["slo"]["ttft_attainment"] is None
