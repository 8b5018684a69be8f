"""Prices and costs are exact integers of micro-units: Decimal parsing, no floats, rounding up."""

from decimal import Decimal

import pytest

from tokenmill.metering.pricing import Prices, cost_micros, parse_amount, to_currency


def test_parse_reads_currency_per_million_as_micros_exactly():
    prices = Prices.parse("0.15", None, "0.6")
    assert prices == Prices(input_micros_per_m=150_000, cached_input_micros_per_m=150_000, output_micros_per_m=600_000)
    assert Prices.parse("3", "0.075", "12.000001").cached_input_micros_per_m == 75_000
    assert Prices.parse("3", "0.075", "12.000001").output_micros_per_m == 12_000_001
    # a value a float cannot hold exactly still parses exactly
    assert parse_amount("0.1") * 3 == parse_amount("0.3") == 300_000
    assert parse_amount("1234567.891011") == 1_234_567_891_011


@pytest.mark.parametrize("text, words", [("abc", "not a number"), ("-1", "0 or more"), ("0.0000001", "6 decimals"),
                                         ("nan", "finite"), ("", "not a number")])
def test_bad_amounts_are_refused_naming_the_value(text, words):
    with pytest.raises(ValueError, match=words) as info:
        Prices.parse("1", None, text)
    assert repr(text) in str(info.value) and "output price" in str(info.value)


def test_prices_refuse_floats_and_negative_micros():
    with pytest.raises(ValueError):
        Prices(input_micros_per_m=0.5)
    with pytest.raises(ValueError):
        Prices(output_micros_per_m=-1)


def test_cost_splits_cached_and_uncached_prompt_and_sums_exactly():
    prices = Prices(input_micros_per_m=1_000_000, cached_input_micros_per_m=500_000, output_micros_per_m=2_000_000)
    # 900 uncached * 1 + 100 cached * 0.5 + 10 * 2 micros = 970 micros
    assert cost_micros(prices, 1000, 100, 10) == 970
    assert cost_micros(prices, 2_000_000, 0, 1_000_000) == 4_000_000
    assert cost_micros(Prices(), 10**9, 10**8, 10**9) == 0
    assert isinstance(cost_micros(prices, 3, 1, 1), int)


def test_cost_rounds_up_to_a_whole_micro_so_nothing_is_undercharged():
    prices = Prices.parse("0.15", "0.075", "0.6")
    assert cost_micros(prices, 1, 0, 0) == 1  # 0.15 micros -> 1
    assert cost_micros(prices, 0, 0, 0) == 0
    assert cost_micros(prices, 10, 0, 0) == 2  # 1.5 -> 2
    # the sum is rounded once, not each part: 0.15 + 0.075 + 0.6 = 0.825 -> 1
    assert cost_micros(prices, 2, 1, 1) == 1
    # many tokens: exact, no float drift
    assert cost_micros(Prices.parse("0.1", None, "0.2"), 10**12 + 7, 0, 0) == 100_000_000_001


def test_to_currency_shows_six_decimals():
    assert to_currency(1) == Decimal("0.000001")
    assert str(to_currency(12_500_000)) == "12.500000"
    assert str(to_currency(0)) == "0.000000"
