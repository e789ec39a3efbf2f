"""The host tier: tests that need a typical user host (systemd as pid 1, pure cgroup v2,
AppArmor, Debian's python3). They run inside the throwaway Debian 12 VM that
`scripts/host-tests.sh` boots (see docs/testing.md); every test here carries the `host`
marker, and the native tiers deselect it (`-m "not host"`).

Run outside such a host, the tier refuses to start with one line saying why, instead of
skipping its tests one by one.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def host_problems() -> list[str]:
    """What makes this machine unlike the hosts the tier is written for (empty: fine)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        problems.append("/sys/fs/cgroup is not a pure cgroup v2 hierarchy")
    if not Path("/run/systemd/system").is_dir():
        problems.append("systemd is not pid 1")
    return problems


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.host)


@pytest.fixture(scope="session", autouse=True)
def _typical_host() -> None:
    problems = host_problems()
    if problems:
        pytest.exit(
            "tests/host needs a systemd + cgroup v2 host (run scripts/host-tests.sh): "
            + ", ".join(problems),
            returncode=4,
        )
