"""Values leaving the product (JSON, graph properties) are finite or absent: never NaN."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["finite_or_none"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float (Python or numpy) replaced by None, through
    dicts, lists and tuples (tuples become lists); finite numpy floats become Python floats."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value
