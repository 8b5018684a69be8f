"""The summary arithmetic on recorded request traces whose answers are worked out by hand."""

import pytest

from tokenmill.bench.metrics import SLO, RequestRecord, percentile, summarize


def trace() -> list[RequestRecord]:
    # three completed requests and two failures, over a 10 s run
    return [
        RequestRecord(True, prompt_tokens=100, output_tokens=11, ttft_s=0.5, e2e_s=1.5, itl_s=[0.1] * 10),
        RequestRecord(True, prompt_tokens=100, output_tokens=5, ttft_s=1.0, e2e_s=3.0, itl_s=[0.5] * 4),
        RequestRecord(True, prompt_tokens=50, output_tokens=1, ttft_s=0.2, e2e_s=0.2),
        RequestRecord(False, prompt_tokens=100, error_kind="http_503"),
        RequestRecord(False, prompt_tokens=100, error_kind="stalled"),
    ]


def test_throughputs_count_completed_requests_only():
    s = summarize(trace(), duration_s=10.0)
    assert (s.completed, s.failed) == (3, 2)
    assert s.request_throughput == pytest.approx(0.3)
    assert s.total_output_tokens == 17 and s.output_throughput == pytest.approx(1.7)
    assert s.total_prompt_tokens == 250 and s.total_token_throughput == pytest.approx(26.7)
    assert s.errors == {"http_503": 1, "stalled": 1}


def test_latencies_follow_vllm_definitions():
    s = summarize(trace(), duration_s=10.0)
    # TPOT per request = (E2E - TTFT) / (output - 1): 0.1 s and 0.5 s; one-token requests have none
    assert s.tpot_ms.mean == pytest.approx(300.0)
    assert s.tpot_ms.median == pytest.approx(300.0)
    assert s.ttft_ms.median == pytest.approx(500.0)
    assert s.ttft_ms.mean == pytest.approx(1700.0 / 3)
    # ITL pools every gap: ten of 100 ms and four of 500 ms
    assert s.itl_ms.mean == pytest.approx((10 * 100 + 4 * 500) / 14)
    assert s.itl_ms.median == pytest.approx(100.0)
    assert s.itl_ms.p99 == pytest.approx(500.0)
    assert s.e2e_ms.p90 == pytest.approx(1500 + 0.8 * 1500)


def test_percentiles_interpolate_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 90) == pytest.approx(4.0 + 0.6 * 6.0)
    assert percentile(values, 99) == pytest.approx(4.0 + 0.96 * 6.0)
    assert percentile([7.0], 99) == 7.0


def test_goodput_counts_requests_within_every_slo():
    records = trace()
    assert summarize(records, 10.0).goodput is None
    # request 1: TTFT 500 ms, TPOT 100 ms; request 2: TTFT 1000 ms, TPOT 500 ms; request 3: TTFT 200 ms
    assert summarize(records, 10.0, SLO.parse("ttft=600")).goodput == pytest.approx(0.2)
    assert summarize(records, 10.0, SLO.parse("ttft=600,tpot=50")).goodput == pytest.approx(0.1)
    assert summarize(records, 10.0, SLO.parse("e2e=4000")).goodput == pytest.approx(0.3)


@pytest.mark.parametrize("bad", ["ttft", "ttft=fast", "latency=5"])
def test_bad_slo_is_refused_with_its_text(bad):
    with pytest.raises(ValueError, match=bad.split("=")[0]):
        SLO.parse(bad)
