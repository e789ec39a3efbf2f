"""bench.stats: percentiles, ratios, targets and the tables."""
from __future__ import annotations

import json

import pytest

from bench.stats import Row, Sample, check, markdown, percentile, table


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 100) == 100
    assert percentile([7.0], 95) == 7.0
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_sample_json_keeps_every_value() -> None:
    s = Sample([1.0, 2.0, 3.0, 10.0])
    d = s.to_json()
    assert d["runs"] == 4 and d["values"] == [1.0, 2.0, 3.0, 10.0]
    assert d["p50"] == 2.5 and d["p95"] == 10.0 and d["min"] == 1.0 and d["max"] == 10.0
    assert "p50" not in Sample(note="failed: x").to_json()


def test_ratio_is_ours_over_peer_p50() -> None:
    r = Row("x", "ms", Sample([10.0, 20.0, 30.0]), {"runc": Sample([5.0, 10.0, 15.0]),
                                                    "crun": Sample(note="not installed")})
    assert r.ratio("runc") == pytest.approx(2.0)
    assert r.ratio("crun") is None
    assert r.ratio("absent") is None
    d = r.to_json()
    assert d["ratios"] == {"runc": 2.0, "crun": None}
    json.dumps(d)  # serialisable


def test_check_sets_met_from_ours_p50() -> None:
    assert check(Row("a", "ms", Sample([40.0, 60.0, 45.0])), 50).met is True
    assert check(Row("a", "ms", Sample([55.0])), 50).met is False
    assert check(Row("a", "MiB/s", Sample([900.0])), 800, at_least=True).met is True
    assert check(Row("a", "ms", Sample()), 50).met is None
    assert check(Row("a", "ms", None), 50).met is None


def test_tables_show_ratios_targets_and_missing_peers() -> None:
    rows = [check(Row("launch", "ms", Sample([20.0, 30.0]), {"runc": Sample([10.0, 10.0]),
                                                             "podman": Sample(note="skipped")},
                      target="<= 50 ms"), 50),
            check(Row("load", "ms", Sample([250.0]), target="< 200 ms"), 200)]
    text = table(rows)
    lines = text.splitlines()
    assert lines[0].startswith("scenario") and set(lines[1]) <= {"-", " "}
    assert "runc 10.0 (2.50x)" in text and "podman: n/a" in text
    launch = next(ln for ln in lines if ln.startswith("launch"))
    assert launch.rstrip().endswith("yes")
    load = next(ln for ln in lines if ln.startswith("load"))
    assert load.rstrip().endswith("NO") and " - " in load  # one value: no p95
    md = markdown(rows)
    assert md.count("\n") == 3 and "| launch | ms | 25.0 |" in md and "**no**" in md
