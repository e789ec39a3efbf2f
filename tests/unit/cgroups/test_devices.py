"""restrict_devices on both drivers (fake trees), and the bpf(2) module's parts that need no
kernel: the syscall table, the attr layouts, how a verifier log becomes a message."""
from __future__ import annotations

import ctypes
import errno
from pathlib import Path

import pytest

from runtime.cgroups import V1Manager, V2Manager, bpf, devprog
from runtime.cgroups.devices import allowed
from runtime.cgroups.errors import CgroupError
from runtime.devrules import DEFAULT_RULES, DeviceRule, policy, rules
from runtime.process import sysnr
from tests.unit.cgroups import bpfvm
from tests.unit.cgroups.fakefs import FakeCgroupFS


class DeviceFS(FakeCgroupFS):
    """The fake tree plus what the kernel does with device rules: v1's devices.allow/deny
    are write-only files (logged here), v2 takes a BPF program (recorded, or refused)."""

    def __init__(self, root: Path, version: str, refuse: OSError | None = None) -> None:
        super().__init__(root, version)
        self.device_writes: list[tuple[str, str, str]] = []
        self.programs: list[tuple[Path, bytes]] = []
        self.refuse = refuse

    def write(self, path: Path, value: str) -> None:
        if path.name in ("devices.allow", "devices.deny") and path.parent.is_dir():
            self.device_writes.append((path.parent.name, path.name, value))
            return
        super().write(path, value)

    def attach_device_filter(self, path: Path, program: bytes) -> None:
        if self.refuse is not None:
            raise self.refuse
        assert self.is_dir(path)
        self.programs.append((path, program))


def test_v1_denies_all_then_allows_the_defaults_and_the_extra_rules(tmp_path: Path) -> None:
    fs = DeviceFS(tmp_path / "cg", "v1")
    cg = V1Manager(fs.root, "composer", fs).create("web-1")
    cg.restrict_devices(rules(["b 8:0 r", "c 188:* rwm"]))
    assert fs.device_writes[0] == ("web-1", "devices.deny", "a")
    assert [w[2] for w in fs.device_writes[1:]] == [
        *(str(r) for r in DEFAULT_RULES), "b 8:0 r", "c 188:* rwm"]
    assert {w[1] for w in fs.device_writes[1:]} == {"devices.allow"}


def test_v1_without_a_devices_hierarchy_is_an_error_not_an_allow_all(tmp_path: Path) -> None:
    fs = DeviceFS(tmp_path / "cg", "v1")
    (fs.root / "devices").rename(tmp_path / "gone")  # this host has no devices hierarchy
    cg = V1Manager(fs.root, "composer", fs).create("web-1")
    with pytest.raises(CgroupError, match="devices controller is not mounted"):
        cg.restrict_devices()
    assert fs.device_writes == []


def test_v2_attaches_the_assembled_filter_to_the_container_cgroup(tmp_path: Path) -> None:
    fs = DeviceFS(tmp_path / "cg", "v2")
    cg = V2Manager(fs.root, "composer", fs).create("web-1")
    extra = rules(["b 8:0 r"])
    cg.restrict_devices(extra)
    [(where, code)] = fs.programs
    assert where == fs.root / "composer" / "web-1"
    assert code == devprog.encode(devprog.assemble(policy(allowed(extra))))
    assert bpfvm.run(code, devprog.DEV_BLOCK, 8, 0, devprog.ACC_READ) == 1
    assert bpfvm.run(code, devprog.DEV_BLOCK, 8, 1, devprog.ACC_READ) == 0


@pytest.mark.parametrize("refusal", [
    bpf.BPFError(errno.EPERM, "bpf(2) refused to load the device filter (EPERM): ..."),
    bpf.BPFError(errno.ENOSYS, "the kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL is off)"),
])
def test_v2_without_bpf_is_one_clear_error(tmp_path: Path, refusal: OSError) -> None:
    fs = DeviceFS(tmp_path / "cg", "v2", refuse=refusal)
    cg = V2Manager(fs.root, "composer", fs).create("web-1")
    with pytest.raises(CgroupError) as e:
        cg.restrict_devices()
    assert str(e.value) == ("cgroup web-1: cannot restrict device access on cgroup v2: "
                            f"{refusal.strerror}")
    assert "\n" not in str(e.value)


def test_v2_too_many_rules_is_an_error_before_bpf(tmp_path: Path) -> None:
    fs = DeviceFS(tmp_path / "cg", "v2")
    cg = V2Manager(fs.root, "composer", fs).create("web-1")
    with pytest.raises(CgroupError, match="more than the kernel's 4096"):
        cg.restrict_devices(tuple(DeviceRule("c", 200, n, "rw") for n in range(800)))
    assert fs.programs == []


def test_bpf_number_per_architecture() -> None:
    assert bpf.syscall_number("x86_64") == 321
    assert bpf.syscall_number("aarch64") == 280
    for arch in sysnr.TABLES:  # one table for every raw syscall number
        assert bpf.syscall_number(arch) == sysnr.number("bpf", arch)
    with pytest.raises(bpf.BPFError, match="no bpf.2. number known for architecture riscv64"):
        bpf.syscall_number("riscv64")


def test_attr_layouts_match_linux_bpf_h() -> None:
    assert ctypes.sizeof(bpf._ProgLoad) == 72
    assert bpf._ProgLoad.prog_name.offset == 48
    assert bpf._ProgLoad.expected_attach_type.offset == 68
    assert ctypes.sizeof(bpf._ProgAttach) == 20
    assert bpf._ProgQuery.prog_ids.offset == 16 and bpf._ProgQuery.prog_cnt.offset == 24
    assert len(bpf.PROG_NAME) < 16


def test_the_verifier_reason_is_the_last_line_before_its_statistics() -> None:
    log = ctypes.create_string_buffer(b"0: (61) r2 = *(u32 *)(r1 +12)\ninvalid bpf_context access "
                                      b"off=12 size=4\nprocessed 1 insns (limit 1000000)\n", 256)
    assert bpf._verifier_says(log) == "invalid bpf_context access off=12 size=4"
    assert bpf._verifier_says(ctypes.create_string_buffer(16)) == ""


def test_a_program_of_the_wrong_size_is_refused_before_the_kernel() -> None:
    with pytest.raises(bpf.BPFError, match="multiple of 8 bytes"):
        bpf.load_device_program(b"\x95" * 7)
