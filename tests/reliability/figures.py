"""Reliability figures: each test prints one line and, when COMPOSER_RELIABILITY_FIGURES names a
file, appends it there as JSON (docs/reliability.md is written from those lines)."""
from __future__ import annotations

import json
import math
import os
import statistics
from typing import Any


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "p95": round(sorted(values)[max(0, math.ceil(len(values) * 0.95) - 1)], 3),
        "max": round(max(values), 3),
    }


def record(name: str, **data: Any) -> None:
    line = json.dumps({"test": name, **data}, sort_keys=True)
    print(f"\nFIGURES {line}")
    path = os.environ.get("COMPOSER_RELIABILITY_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
