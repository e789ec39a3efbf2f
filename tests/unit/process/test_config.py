from __future__ import annotations

import json

import pytest

from runtime import serde
from runtime.errors import InvalidArgument
from runtime.process.config import (
    CAPS,
    DEFAULT_CAPS,
    ExecConfig,
    LaunchConfig,
    MountPoint,
    cap_mask,
    check,
    check_sysctls,
    effective_caps,
)
from runtime.types import Ulimit


def cfg(**kw: object) -> LaunchConfig:
    base: dict[str, object] = dict(id="c1", argv=("sh",), state_dir="/s", mergeddir="/m",
                                   lowerdirs=("/l",))
    base.update(kw)
    return LaunchConfig(**base)  # type: ignore[arg-type]


def test_default_caps_mask_is_dockers() -> None:
    assert len(DEFAULT_CAPS) == 14
    assert cap_mask(DEFAULT_CAPS) == 0xA80425FB  # CapEff of `docker run busybox`


def test_effective_caps_default_add_drop() -> None:
    assert set(effective_caps()) == set(DEFAULT_CAPS)
    caps = effective_caps(["NET_ADMIN", "cap_sys_ptrace"], ["MKNOD", "CAP_NET_RAW"])
    assert "NET_ADMIN" in caps and "SYS_PTRACE" in caps
    assert "MKNOD" not in caps and "NET_RAW" not in caps
    assert len(caps) == 14


def test_effective_caps_all() -> None:
    assert set(effective_caps(["ALL"])) == set(CAPS)
    assert set(effective_caps(["ALL"], ["SYS_ADMIN"])) == set(CAPS) - {"SYS_ADMIN"}
    assert effective_caps(["CHOWN"], ["ALL"]) == ("CHOWN",)
    assert effective_caps((), ["ALL"]) == ()
    assert set(effective_caps((), ["ALL"], privileged=True)) == set(CAPS)


def test_effective_caps_unknown_name() -> None:
    with pytest.raises(InvalidArgument, match="unknown capability 'FLY'"):
        effective_caps(["FLY"])


@pytest.mark.parametrize("name", ["kernel.shmmax", "kernel.msgmnb", "kernel.sem",
                                  "fs.mqueue.msg_max", "net.ipv4.ip_forward",
                                  "net.core.somaxconn"])
def test_namespaced_sysctls_allowed(name: str) -> None:
    check_sysctls({name: "1"}, own_ipc=True, own_net=True)


@pytest.mark.parametrize("name", ["kernel.hostname", "vm.swappiness", "fs.file-max",
                                  "kernel.pid_max"])
def test_host_sysctls_rejected(name: str) -> None:
    with pytest.raises(InvalidArgument, match="not namespaced"):
        check_sysctls({name: "1"}, own_ipc=True, own_net=True)


def test_net_sysctl_needs_own_netns() -> None:
    with pytest.raises(InvalidArgument, match="network namespace"):
        check_sysctls({"net.ipv4.ip_forward": "1"}, own_ipc=True, own_net=False)
    with pytest.raises(InvalidArgument, match="ipc namespace"):
        check_sysctls({"kernel.shmmax": "1"}, own_ipc=False, own_net=True)


def test_check_rejects_bad_configs() -> None:
    check(cfg())
    with pytest.raises(InvalidArgument, match="no command"):
        check(cfg(argv=()))
    with pytest.raises(InvalidArgument, match="unknown namespace"):
        check(cfg(namespaces=("mnt", "time")))
    with pytest.raises(InvalidArgument, match="absolute"):
        check(cfg(mounts=(MountPoint("bind", "data", "/x"),)))
    with pytest.raises(InvalidArgument, match="workdir"):
        check(cfg(upperdir="/u"))
    with pytest.raises(InvalidArgument, match="not namespaced"):
        check(cfg(sysctls={"vm.overcommit_memory": "1"}))
    with pytest.raises(InvalidArgument, match="network namespace"):
        check(cfg(namespaces=("mnt", "pid"), sysctls={"net.core.somaxconn": "1"}))


def test_launch_config_json_round_trip() -> None:
    c = cfg(env=("A=1",), mounts=(MountPoint("tmpfs", "/run", options=("size=1m",)),
                                  MountPoint("bind", "/data", "/srv/v", read_only=True)),
            etc_files={"/etc/hosts": "/s/hosts"}, join_namespaces={"net": "/proc/1/ns/net"},
            rlimits=(Ulimit("nofile", 1024, 2048),), sysctls={"net.core.somaxconn": "1024"},
            init=True, tty=True)
    again = serde.from_dict(LaunchConfig, json.loads(json.dumps(serde.to_dict(c))))
    assert again == c
    e = ExecConfig(argv=("ps",), cgroup_procs=("/sys/fs/cgroup/pids/x/cgroup.procs",))
    assert serde.from_dict(ExecConfig, json.loads(json.dumps(serde.to_dict(e)))) == e


def test_log_file_default() -> None:
    assert cfg().log_file == "/s/container.log"
    assert cfg(log_path="/x.log").log_file == "/x.log"
