"""bench on the real kernel: the OCI peers' overlay root and bundle (runc, as the bench runs
it), the podman exec peer of the cli rows, and that each leaves nothing behind."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import peers
from bench.oci import MERGED, overlay_root, unmount_all
from bench.rootfs import make_bundle


def _mounted(under: Path) -> list[str]:
    return [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()
            if ln.split()[1].startswith(str(under))]


@pytest.fixture
def bundle(tmp_path: Path):  # type: ignore[no-untyped-def]
    b = make_bundle(tmp_path / "peers", shutil.which("runc"))
    yield b
    unmount_all(tmp_path)
    peers.remove_peer_cgroups()


def test_overlay_root_is_mounted_for_the_run_and_gone_after_even_on_ctrl_c(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "bin").mkdir(parents=True)
    (lower / "bin" / "x").write_text("lower")
    bundle_dir = tmp_path / "bundle"
    (bundle_dir / MERGED).mkdir(parents=True)
    with overlay_root(lower, bundle_dir, "r1") as root:
        assert _mounted(bundle_dir) == [str(root)]
        assert (root / "bin" / "x").read_text() == "lower"
        (root / "bin" / "x").write_text("upper")  # copied up, the lower stays
    assert _mounted(bundle_dir) == [] and not (bundle_dir / "runs" / "r1").exists()
    assert (lower / "bin" / "x").read_text() == "lower"
    with pytest.raises(KeyboardInterrupt), overlay_root(lower, bundle_dir, "r2"):
        raise KeyboardInterrupt
    assert _mounted(bundle_dir) == [] and not (bundle_dir / "runs" / "r2").exists()


def test_unmount_all_finds_what_a_killed_run_left(tmp_path: Path) -> None:
    target = tmp_path / "a" / "m"
    target.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "cmpbench", str(target)], check=True)
    assert unmount_all(tmp_path) == [str(target)] and _mounted(tmp_path) == []


def test_runc_runs_the_bundle_with_our_features(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = json.loads((bundle.dir / "config.json").read_text())
    assert cfg["linux"]["seccomp"]["syscalls"] and cfg["root"]["path"] == MERGED
    assert {"type": "cgroup"} in cfg["linux"]["namespaces"]
    seen = peers.probe_oci("runc", bundle, tmp_path / "state")
    assert seen["lo_flags"] == "0x9"  # IFF_UP | IFF_LOOPBACK: runc brings lo up
    assert seen["seccomp"] == "2"  # a filter
    assert seen["cgroup_ns"] != seen["host_cgroup_ns"]
    assert seen["root_fstype"] == "overlay" and seen["hostname"] == "bench"
    ms = peers.oci_once("runc", bundle, tmp_path / "state", 0)
    assert ms > 0
    assert _mounted(tmp_path) == [] and not list((bundle.dir / "runs").iterdir())
    assert not list((tmp_path / "state").iterdir())  # `runc run` deleted its container


def test_podman_exec_peer_of_the_cli_rows_leaves_nothing(bundle, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The cli rows' peer jobs with podman only (no dockerd here): the exec job times
    `podman exec` into a running container; the teardown and HostGuard leave nothing."""
    import contextlib

    from bench import docker, scenarios
    from bench.stats import Sample

    monkeypatch.setattr(docker, "installed", lambda: False)
    ctx = scenarios.Context(tmp_path, True, True, lambda _: None)
    ctx._bundle = bundle
    names = [scenarios.PS_ROW, scenarios.EXEC_ROW, scenarios.RUN_BRIDGE, scenarios.RUN_NONE]
    samples: dict[str, dict[str, Sample]] = {n: {"": Sample()} for n in names}
    with contextlib.ExitStack() as stack:
        stack.enter_context(ctx.peer("podman (test)"))
        jobs = scenarios._cli_peer_jobs(ctx, stack, tmp_path / "unused.yaml", samples)
        exec_jobs = [j for j in jobs if j.row == scenarios.EXEC_ROW]
        assert [j.peer for j in exec_jobs] == ["podman exec"]
        assert exec_jobs[0].run() > 0
    assert samples[scenarios.EXEC_ROW]["docker exec"].note == "not installed"
    pm = peers.Podman(tmp_path / "podman-cli")
    assert pm.conmon_pids() == []
    assert not any("failed" in c for c in ctx.cleanup)


def test_peers_namespace_keeps_its_cgroup_view_to_itself(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The OCI peers run from a server in a mount namespace of its own: a v1 hugetlb mounted
    for crun on a hybrid host is seen there, never on the host (a composerd started meanwhile
    made its containers' cgroups in it and lost them at the unmount), and the peers' hugetlb
    cgroups are gone when it ends."""
    from bench.peerns import PeerNamespace
    from bench.rootfs import PEER_CGROUP

    host_view = sorted(p.name for p in peers.CGROUP_ROOT.iterdir())
    host_mounts = Path("/proc/self/mountinfo").read_text()
    needed = peers.hybrid_hugetlb() or peers.hugetlb_lingering()
    ns = PeerNamespace(bundle, PEER_CGROUP)
    try:
        theirs = Path(f"/proc/{ns.proc.pid}/mountinfo").read_text()
        assert ("hugetlb" in ns.did) == needed
        if needed:
            assert any(" cgroup " in ln and "hugetlb" in ln for ln in theirs.splitlines())
        assert sorted(p.name for p in peers.CGROUP_ROOT.iterdir()) == host_view
        assert not any(" - cgroup " in ln and "hugetlb" in ln
                       for ln in Path("/proc/self/mountinfo").read_text().splitlines())
        seen = ns.probe_oci("runc", tmp_path / "state")
        assert seen["seccomp"] == "2" and seen["root_fstype"] == "overlay"
        assert ns.oci_once("runc", tmp_path / "state", 0) > 0
        with pytest.raises(peers.PeerError, match="unknown request"):
            ns.call(op="nothing")
    finally:
        ns.close()
    assert ns.proc.returncode == 0 and ns.left == []
    assert Path("/proc/self/mountinfo").read_text().count("hugetlb") == host_mounts.count("hugetlb")
    assert _mounted(tmp_path) == [] and not list((bundle.dir / "runs").iterdir())
    if needed:  # the hierarchy outlives the namespace: none of the peers' cgroups in it
        look = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f'mount -t cgroup -o hugetlb cgroup "{tmp_path}" && ls "{tmp_path}"; umount "{tmp_path}"'],
            capture_output=True, text=True, check=True)
        assert PEER_CGROUP not in look.stdout.split()
