"""Composer networks beside other firewalls, each scenario in a private network namespace.

The scenario_*.py files in tests/integration/network/netns/ reproduce another program's firewall state (a
real dockerd from Debian's docker.io; netavark's chains and table; an nftables-only host
firewall; a FORWARD DROP without DOCKER-USER; no br_netfilter). They run in
`unshare --net --mount` (see netns/conftest.py for why), one pytest run per file, started
here; /run and /etc/docker are private tmpfs mounts there, so nothing dockerd writes (its
key.json, /run/docker) reaches this machine.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[2]

# /etc/docker is mounted over: it must exist (docker.io creates it); made and removed if not
SETUP = "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /etc/docker && exec \"$@\""


def run_private(test_file: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    made = not Path("/etc/docker").exists()
    if made:
        Path("/etc/docker").mkdir()
    env = {**os.environ, "COMPOSER_TEST_NETNS": "1",
           "COMPOSER_TEST_OUTER_NETNS": str(os.stat("/proc/self/ns/net").st_ino)}
    argv = [
        "unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", SETUP, "-",
        sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
        str(HERE / "netns" / test_file),
    ]
    start = time.monotonic()
    try:
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    finally:
        if made:
            Path("/etc/docker").rmdir()
    return done, time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize("test_file", [
    pytest.param("scenario_docker.py", marks=pytest.mark.peers),
    "scenario_firewalls.py",
])
def test_scenarios_in_private_netns(test_file: str) -> None:
    done, took = run_private(test_file, timeout=600)
    print(f"{test_file}: {took:.1f}s\n{done.stdout[-3000:]}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout[-3000:]
