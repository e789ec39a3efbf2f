"""The monitor on a stock host, whose root may lower an OOM score (this CI machine's root,
in a sandbox without CAP_SYS_RESOURCE, may not): the monitor is the OOM killer's last
choice, -999, and its containers keep the score it was started with."""
from __future__ import annotations

from tests.integration.process.test_monitor import (
    can_lower_oom_score,
    test_the_oom_killer_takes_the_monitor_last_and_containers_as_before,
)


def test_this_host_lets_root_lower_an_oom_score() -> None:
    assert can_lower_oom_score()  # so the scenario below asserts -999 here, not a fallback


__all__ = ["test_the_oom_killer_takes_the_monitor_last_and_containers_as_before"]
