"""Quantities written by people in flags and config files."""

from __future__ import annotations

_BYTE_UNITS = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "b": 1}


def parse_bytes(text: str) -> int:
    """'512MiB', '2GiB', '1000000' -> bytes."""
    lower = text.strip().lower()
    try:
        for unit, factor in _BYTE_UNITS.items():
            if lower.endswith(unit):
                return int(float(lower[: -len(unit)]) * factor)
        return int(lower)
    except ValueError:
        raise ValueError(f"{text!r} is not a size; write it like 512MiB, 2GiB or a number of bytes") from None
