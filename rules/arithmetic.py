"""Billing-unit arithmetic shared by the units, waste and crosswalk rules."""

from __future__ import annotations

import math


def units_for(mg: float, unit_mg: float) -> int:
    """Whole billing units covering `mg` (rounded up), tolerant of float noise such as 1050.0000000001 mg."""
    return math.ceil(round(mg / unit_mg, 6))


def whole_units_in(mg: float, unit_mg: float) -> int:
    """Whole billing units contained in `mg` (rounded down): k = floor(D / U) of the waste rules."""
    return math.floor(round(mg / unit_mg, 6))


def format_number(value: float) -> str:
    """A quantity as a biller writes it: 210 not 210.0; at most 4 decimals (1050.5, 0.3333)."""
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")
