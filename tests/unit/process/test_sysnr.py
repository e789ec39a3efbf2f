"""The per-architecture syscall tables: lookups, and the tables against known anchors of the
kernel's syscall_64.tbl (x86_64) and scripts/syscall.tbl (aarch64)."""
from __future__ import annotations

import os

import pytest

from runtime.process import sysnr

ANCHORS = {  # name: (x86_64, aarch64)
    "read": (0, 63), "openat": (257, 56), "pivot_root": (155, 41), "mount": (165, 40),
    "umount2": (166, 39), "clone": (56, 220), "clone3": (435, 435), "execve": (59, 221),
    "personality": (135, 92), "socket": (41, 198), "seccomp": (317, 277), "bpf": (321, 280),
    "open_tree": (428, 428), "move_mount": (429, 429), "mount_setattr": (442, 442),
    "io_uring_setup": (425, 425), "kexec_file_load": (320, 294), "rseq": (334, 293),
    "memfd_secret": (447, 447), "mseal": (462, 462), "listns": (470, 470),
}


@pytest.mark.parametrize("name", sorted(ANCHORS))
def test_anchors(name: str) -> None:
    x86, arm = ANCHORS[name]
    assert sysnr.number(name, "x86_64") == x86
    assert sysnr.number(name, "aarch64") == arm
    assert sysnr.name_of(x86, "x86_64") == name and sysnr.name_of(arm, "aarch64") == name


def test_tables_are_one_number_per_name_and_end_at_linux_6_19() -> None:
    for arch in ("x86_64", "aarch64"):
        table = sysnr.table(arch)
        assert len(set(table.values())) == len(table)
        assert sysnr.highest(arch) == 470
        assert all(0 <= nr < sysnr.X32_SYSCALL_BIT for nr in table.values())
    # what exists on one arch only
    assert sysnr.lookup("arch_prctl", "aarch64") is None and sysnr.lookup("open", "aarch64") is None
    assert sysnr.lookup("arch_prctl", "x86_64") == 158
    assert len(sysnr.table("x86_64")) == 337 + 47 and len(sysnr.table("aarch64")) == 325


def test_aliases_and_the_host() -> None:
    assert sysnr.number("bpf", "amd64") == sysnr.number("bpf", "SCMP_ARCH_X86_64") == 321
    assert sysnr.number("bpf", "arm64") == 280
    host = os.uname().machine
    if host in ("x86_64", "aarch64"):
        assert sysnr.number("pivot_root") == sysnr.number("pivot_root", host)


def test_unknown_names_and_machines() -> None:
    with pytest.raises(sysnr.UnknownSyscall, match="no syscall 'open' on aarch64"):
        sysnr.number("open", "aarch64")
    with pytest.raises(sysnr.UnsupportedArch, match="no syscall table for the riscv64 "
                                                    "architecture"):
        sysnr.number("read", "riscv64")
    assert sysnr.name_of(400, "x86_64") is None  # an unused slot
