"""Prices per million tokens and the cost of a request, in integer micro-units of currency.

Money never touches a float: prices are parsed with Decimal and costs are summed exactly in
integers, then rounded up to a whole micro-unit so a request is never undercharged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MICROS = 1_000_000  # micro-units per currency unit
PER = 1_000_000  # prices are per million tokens


@dataclass(frozen=True, slots=True)
class Prices:
    """Micro-units of currency per million input, cached-input and output tokens."""

    input_micros_per_m: int = 0
    cached_input_micros_per_m: int = 0
    output_micros_per_m: int = 0

    def __post_init__(self) -> None:
        for name in ("input_micros_per_m", "cached_input_micros_per_m", "output_micros_per_m"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number of micro-units, 0 or more; got {value!r}")

    @classmethod
    def parse(cls, input: str, cached_input: str | None, output: str) -> Prices:
        """Prices from currency amounts per million tokens ("0.15"); cached input defaults to the input price."""
        input_micros = parse_amount(input, what="input price")
        cached_micros = input_micros if cached_input is None else parse_amount(cached_input, what="cached input price")
        return cls(input_micros, cached_micros, parse_amount(output, what="output price"))

    @property
    def free(self) -> bool:
        return not (self.input_micros_per_m or self.cached_input_micros_per_m or self.output_micros_per_m)


def parse_amount(text: str | int, what: str = "amount") -> int:
    """A currency amount ("12.5", at most 6 decimals, not negative) in micro-units."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a number: write it in currency units, like 0.15") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what} {text!r} must be a finite amount of 0 or more, like 0.15")
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise ValueError(f"{what} {text!r} has more than 6 decimals: round it to a micro-unit (0.000001)")
    return int(micros)


def cost_micros(prices: Prices, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> int:
    """Cost of a request in micro-units: uncached prompt, cached prompt and completion tokens, rounded up."""
    cached = min(max(cached_tokens, 0), max(prompt_tokens, 0))
    uncached = max(prompt_tokens, 0) - cached
    total = (uncached * prices.input_micros_per_m + cached * prices.cached_input_micros_per_m
             + max(completion_tokens, 0) * prices.output_micros_per_m)
    return -(-total // PER)  # ceiling division: never undercharge


def to_currency(micros: int) -> Decimal:
    """Micro-units as a currency amount with 6 decimals, for display."""
    return (Decimal(micros) / MICROS).quantize(Decimal("0.000001"))
