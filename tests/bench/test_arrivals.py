"""The open-loop arrival process sends requests at the rate asked for."""

import statistics

import pytest

from tokenmill.bench.arrivals import arrival_times


@pytest.mark.parametrize("rate", [2.0, 50.0])
@pytest.mark.parametrize("burstiness", [1.0, 0.5, 4.0])
def test_rate_within_five_percent_over_500_arrivals(rate, burstiness):
    times = arrival_times(500, rate, burstiness, seed=7)
    assert times == sorted(times)
    assert 500 / times[-1] == pytest.approx(rate, rel=0.05)


def test_burstiness_sets_how_uneven_the_gaps_are():
    def cv2(burstiness: float) -> float:
        times = arrival_times(5000, 10.0, burstiness, seed=1)
        gaps = [b - a for a, b in zip([0.0] + times, times)]
        return statistics.pvariance(gaps) / statistics.fmean(gaps) ** 2

    # gamma gaps: squared coefficient of variation = 1 / shape
    assert cv2(1.0) == pytest.approx(1.0, rel=0.1)
    assert cv2(0.25) == pytest.approx(4.0, rel=0.15)
    assert cv2(4.0) == pytest.approx(0.25, rel=0.1)


def test_infinite_rate_sends_everything_at_once_and_seed_repeats():
    assert arrival_times(5, float("inf")) == [0.0] * 5
    assert arrival_times(20, 3.0, seed=4) == arrival_times(20, 3.0, seed=4)
    with pytest.raises(ValueError, match="rate"):
        arrival_times(5, 0.0)
