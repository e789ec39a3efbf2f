"""bench: the OCI peers' bundle given our container's features, the interleaved peer runs,
and the engine's phase clock (no kernel needed: tests/integration/bench runs them)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench.oci import ETC_FILES, MERGED, like_ours, oci_seccomp
from bench.ours import PhaseClock
from bench.peers import Interleaved, PeerError
from bench.rootfs import oci_config
from runtime.process.config import DEFAULT_CAPS


def _names(profile: dict) -> set[str]:  # type: ignore[type-arg]
    return {n for rule in profile["syscalls"] for n in rule["names"]}


def test_seccomp_is_dockers_default_for_dockers_caps() -> None:
    prof = oci_seccomp(arch="x86_64", kernel=(6, 1))
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["defaultErrnoRet"] == 1
    assert prof["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = _names(prof)
    assert {"read", "execve", "exit_group", "clone"} <= names
    assert "mount" not in names and "bpf" not in names  # CAP_SYS_ADMIN's, not held
    assert "mount" in _names(oci_seccomp((*DEFAULT_CAPS, "SYS_ADMIN"), "x86_64", (6, 1)))
    # clone without CAP_SYS_ADMIN: no CLONE_NEW* flag (an argument rule, as moby writes it)
    clone = [r for r in prof["syscalls"] if r["names"] == ["clone"]]
    assert clone and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    assert clone[0]["args"][0]["value"] == 0x7E020000
    assert oci_seccomp(arch="aarch64", kernel=(6, 1))["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    json.dumps(prof)


def test_bundle_config_is_given_our_features(tmp_path: Path) -> None:
    template = {"process": {"terminal": True, "args": ["sh"], "noNewPrivileges": True,
                            "capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_KILL"]}},
                "root": {"path": "rootfs", "readonly": True},
                "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
                "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}]}}
    cfg = like_ours(oci_config(template, ["/bin/true"], "r1"), tmp_path)
    linux = cfg["linux"]
    assert [n["type"] for n in linux["namespaces"]].count("cgroup") == 1
    assert like_ours(cfg, tmp_path)["linux"]["namespaces"] == linux["namespaces"]  # not twice
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO" and linux["seccomp"]["syscalls"]
    caps = cfg["process"]["capabilities"]
    assert sorted(caps) == ["bounding", "effective", "permitted"]  # no ambient, as ours
    assert caps["bounding"] == [f"CAP_{c}" for c in DEFAULT_CAPS] and len(DEFAULT_CAPS) == 14
    assert cfg["process"]["noNewPrivileges"] is False
    assert cfg["root"] == {"path": MERGED, "readonly": False} and (tmp_path / MERGED).is_dir()
    etc = {m["destination"]: m for m in cfg["mounts"] if m["destination"].startswith("/etc/")}
    assert sorted(etc) == sorted(f"/etc/{n}" for n in ETC_FILES)
    for m in etc.values():
        assert m["type"] == "bind" and Path(m["source"]).is_file()
    json.dumps(cfg)


def test_interleaved_runs_each_tool_per_round_and_drops_a_failing_one() -> None:
    calls: list[tuple[str, int]] = []

    def ok(i: int) -> float:
        calls.append(("ok", i))
        return 10.0 + i

    def breaks(i: int) -> float:
        calls.append(("bad", i))
        if i == 2:
            raise PeerError("crun run exited 1: boom")
        return 1.0

    inter = Interleaved({"runc": ok, "crun": breaks}, warmup=2)
    for i in range(5):
        inter(i)
    assert calls[:4] == [("ok", 0), ("bad", 0), ("ok", 1), ("bad", 1)]
    assert inter.samples["runc"].values == [12.0, 13.0, 14.0]  # warm-ups not counted
    assert inter.samples["crun"].values == [] and "boom" in inter.samples["crun"].note
    assert ("bad", 3) not in calls  # it left after failing


def test_phase_clock_adds_up_the_wrapped_calls() -> None:
    class Thing:
        def sync(self) -> int:
            return 1

        async def later(self) -> int:
            await asyncio.sleep(0.01)
            return 2

    thing = Thing()
    clock = PhaseClock()
    clock.wrap(thing, "sync", "a")
    clock.wrap(thing, "later", "b")

    async def go() -> None:
        assert thing.sync() == 1 and await thing.later() == 2 and await thing.later() == 2

    asyncio.run(go())
    assert set(clock.now) == {"a", "b"} and clock.now["b"] >= 20 and clock.now["a"] < 5
    clock.now.clear()
    assert thing.sync() == 1 and clock.now["a"] >= 0
