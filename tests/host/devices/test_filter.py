"""The BPF device filter against the kernel of a pure cgroup v2 host (in /sys/fs/cgroup itself):
the tests of tests/integration/cgroups/test_devices_v2.py, which natively use the hybrid
host's cgroup2 mount."""
from __future__ import annotations

import pytest

from tests.integration.cgroups.test_devices_v2 import (
    manager,
    nodes,
    test_a_listed_device_is_allowed_with_its_access_only,
    test_a_new_filter_replaces_the_old_one_and_leaves_no_fd,
    test_default_rules_refuse_a_block_device_and_allow_the_standard_nodes,
    test_device_cgroup_rules_extend_the_list_and_a_allows_everything,
    test_refusals_are_one_clear_line,
    test_without_m_mknod_is_refused,
)
from tests.loopdev import loop_devices

pytestmark = pytest.mark.usefixtures(loop_devices.__name__)

__all__ = [  # collected here too, as host tests
    "loop_devices",
    "manager",
    "nodes",
    "test_a_listed_device_is_allowed_with_its_access_only",
    "test_a_new_filter_replaces_the_old_one_and_leaves_no_fd",
    "test_default_rules_refuse_a_block_device_and_allow_the_standard_nodes",
    "test_device_cgroup_rules_extend_the_list_and_a_allows_everything",
    "test_refusals_are_one_clear_line",
    "test_without_m_mknod_is_refused",
]
