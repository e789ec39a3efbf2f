"""100 cycles of `up -d` / `down` of a 5-service stack: nothing may accumulate on the host."""
from __future__ import annotations

import os
import time

from tests.reliability.conftest import Rig
from tests.reliability.figures import record, summary

CYCLES = int(os.environ.get("COMPOSER_RELIABILITY_CYCLES", "100"))

STACK = """
services:
  db:
    image: busybox
    init: true
    command: sleep 600
    networks: [back]
    volumes: ["data:/data"]
  cache:
    image: busybox
    init: true
    command: sleep 600
    networks: [back]
  app:
    image: busybox
    init: true
    command: sleep 600
    networks: [back]
    volumes: ["data:/data"]
    depends_on: [db, cache]
  worker:
    image: busybox
    init: true
    command: sleep 600
    networks: [back]
    depends_on: [db]
  web:
    image: busybox
    init: true
    command: sleep 600
    networks: [back]
    depends_on: [app]
networks:
  back: {}
volumes:
  data: {}
"""


def test_up_down_cycles_leave_nothing(rig: Rig) -> None:
    d = rig.project_dir(STACK)
    rig.composer("ps", cwd=d)  # starts composerd: its own processes belong to "before"
    before = rig.snapshot()
    daemon = rig.env.daemon_pid()
    ups: list[float] = []
    downs: list[float] = []
    leaked_at: dict[int, dict[str, list[str]]] = {}
    for i in range(CYCLES):
        t0 = time.monotonic()
        rig.composer("up", "-d", cwd=d)
        t1 = time.monotonic()
        rig.scope.learn()
        if i == 0:
            during = rig.snapshot().leaks_since(before)
            # the snapshot must see a running stack, or it could not see a leaked one either
            assert len(during.get("state_dirs", [])) == 5, during
            assert len(during.get("cgroups", [])) >= 5, during
            assert len(during.get("links", [])) == 6, during  # one bridge, five veths
            assert len(during.get("netns", [])) == 5, during
            assert during.get("nft"), during
            assert len(during.get("ipam", [])) >= 11, during  # network, 5 leases, 5 endpoints
            assert len(during.get("processes", [])) >= 10, during
            rows = rig.ps(d)
            assert sorted(r["State"] for r in rows) == ["running"] * 5, rows
        t2 = time.monotonic()
        rig.composer("down", cwd=d)
        t3 = time.monotonic()
        ups.append(t1 - t0)
        downs.append(t3 - t2)
        assert rig.env.daemon_pid() == daemon, (
            f"composerd {daemon} was replaced during cycle {i}; its log:\n{rig.daemon_log()}")
        leaks = rig.snapshot().leaks_since(before)
        if leaks:
            leaked_at[i] = leaks
    after = rig.snapshot()
    assert after == before or not after.leaks_since(before), after.leaks_since(before)
    cycles = [u + dn for u, dn in zip(ups, downs, strict=True)]
    record("up_down_cycles", cycles=CYCLES, services=5, leaks=len(leaked_at),
           up_s=summary(ups), down_s=summary(downs), cycle_s=summary(cycles))
    assert not leaked_at, f"leaks after cycles {sorted(leaked_at)}: {next(iter(leaked_at.values()))}"
    # the named volume survives `down` (no -v) and goes with `down -v`
    assert (rig.env.root / "volumes").is_dir() and any((rig.env.root / "volumes").iterdir())
    rig.composer("down", "-v", cwd=d)
    assert not any((rig.env.root / "volumes").iterdir())
