"""The exec helper's cgroup join (runtime.process.nsexec.join_cgroup) on the recording fake
kernel: a v1 hierarchy gets 0 in `tasks` (the calling thread alone: no global threadgroup
lock, no RCU grace period), a v2 cgroup the helper's pid in cgroup.procs."""
from __future__ import annotations

import os

from runtime.process.config import ExecConfig
from runtime.process.nsexec import join_cgroup, join_container
from runtime.process.syscalls import RecordingSyscalls

V1 = "/sys/fs/cgroup/memory/composer/c1"
V2 = "/sys/fs/cgroup/unified/composer/c1"


def test_v1_takes_0_in_tasks_and_v2_the_pid_in_cgroup_procs() -> None:
    sc = RecordingSyscalls(files={f"{V1}/tasks": "", f"{V1}/cgroup.procs": "",
                                  f"{V2}/cgroup.procs": ""})
    join_cgroup(f"{V1}/cgroup.procs", sc)
    join_cgroup(f"{V2}/cgroup.procs", sc)
    assert sc.calls == [("write_file", f"{V1}/tasks", "0"),
                        ("write_file", f"{V2}/cgroup.procs", str(os.getpid()))]


def test_every_cgroup_is_joined_before_any_namespace() -> None:
    hierarchies = [f"/sys/fs/cgroup/{c}/composer/c1" for c in ("cpu", "memory", "pids")]
    sc = RecordingSyscalls(files={f"{d}/tasks": "" for d in hierarchies})
    cfg = ExecConfig(argv=("true",), cgroup_procs=tuple(f"{d}/cgroup.procs" for d in hierarchies))
    join_container(os.getpid(), cfg, sc)  # our own namespaces: nothing to join
    assert sc.calls == [("write_file", f"{d}/tasks", "0") for d in hierarchies]
