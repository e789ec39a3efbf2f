"""The OCI peers' own mount namespace: crun and runc run from one process whose view of
/sys/fs/cgroup nobody else shares.

crun (and systemd-nspawn) refuse a hybrid host while its cgroup2 holds hugetlb; a v1
hugetlb hierarchy mounted at /sys/fs/cgroup/hugetlb makes them run (shared/PEERS.md). The
bench used to mount it on the host around the crun runs. Every composerd started in that
window on the machine (another developer's tests, a CLI) then found the hierarchy, made its
containers' cgroups in it and lost them at the unmount: its `exec` and `run` failed
("no such file ... /sys/fs/cgroup/hugetlb/composer/<id>/cgroup.procs"), and those cgroups
kept the unmounted hierarchy alive, out of everyone's sight.

So the peers run from a small server started under `unshare --mount --propagation private`:
there a tmpfs over /sys/fs/cgroup holds bind mounts of the host's hierarchies plus, when
needed, the v1 hugetlb one. The server does what the bench process did, one request per JSON
line (`oci_once`, `probe_oci`, `run_nspawn` of bench.peers), so each timing is the same work
as before, measured inside the server: the overlay mount, `<tool> run`, the unmount. At the
end it removes the peers' cgroups from the hugetlb hierarchy (or it would linger) and exits;
its namespace, and every mount in it, goes with it.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from bench import peers
from bench.rootfs import Bundle
from bench.stats import Sample

CGROUP_ROOT = peers.CGROUP_ROOT


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def private_cgroup_view(peer_cgroup: str) -> str:
    """In this process's own mount namespace: /sys/fs/cgroup as the host has it, plus a v1
    hugetlb hierarchy when cgroup2 holds hugetlb (or one lingers). What was done, for the JSON."""
    need = peers.hybrid_hugetlb() or peers.hugetlb_lingering()
    if not need:
        return "not needed (cgroup2 holds no hugetlb)"
    saved = Path(tempfile.mkdtemp(prefix="cmpbench-cgview-"))
    try:
        _mount("--rbind", str(CGROUP_ROOT), str(saved))
        _mount("-t", "tmpfs", "-o", "mode=755", "cmpbench-cgview", str(CGROUP_ROOT))
        for entry in sorted(saved.iterdir()):
            target = CGROUP_ROOT / entry.name
            if entry.is_symlink():  # "cpu,cpuacct" hosts link cpu -> cpu,cpuacct
                target.symlink_to(os.readlink(entry))
                continue
            target.mkdir()
            _mount("--bind", str(entry), str(target))
        hugetlb = CGROUP_ROOT / "hugetlb"
        hugetlb.mkdir(exist_ok=True)
        _mount("-t", "cgroup", "-o", "hugetlb", "cgroup", str(hugetlb))
    finally:
        subprocess.run(["umount", "-l", str(saved)], capture_output=True)
        with contextlib.suppress(OSError):
            saved.rmdir()
    return (f"v1 hugetlb mounted at {hugetlb} in the peers' own mount namespace "
            f"(for {peer_cgroup}'s crun/nspawn runs; the host's /sys/fs/cgroup unchanged)")


def remove_hugetlb_cgroups(peer_cgroup: str) -> list[str]:
    """rmdir the peers' cgroups in the private hugetlb hierarchy, deepest first; what is left."""
    top = CGROUP_ROOT / "hugetlb" / peer_cgroup
    return peers.rmdir_cgroups(top) if top.is_dir() else []


def _call(bundle: Bundle, req: dict[str, Any]) -> Any:
    op = req["op"]
    if op == "oci_once":
        return peers.oci_once(req["tool"], bundle, Path(req["state"]), int(req["i"]))
    if op == "probe_oci":
        return peers.probe_oci(req["tool"], bundle, Path(req["state"]))
    if op == "run_nspawn":
        s = peers.run_nspawn(bundle, int(req["runs"]))
        return {"values": s.values, "note": s.note}
    raise ValueError(f"unknown request {op!r}")


def serve(bundle_dir: str, peer_cgroup: str, rin: IO[str], wout: IO[str]) -> None:
    """The server's side: set the view up, answer requests until EOF, clean up."""
    bundle = Bundle(Path(bundle_dir))
    try:
        hello: dict[str, Any] = {"did": private_cgroup_view(peer_cgroup)}
    except (subprocess.CalledProcessError, OSError) as e:
        err = e.stderr.decode(errors="replace").strip() if isinstance(
            e, subprocess.CalledProcessError) and e.stderr else str(e)
        hello = {"error": f"the peers' cgroup view failed: {err}"}
    print(json.dumps(hello), file=wout, flush=True)
    if "error" in hello:
        return
    try:
        for line in rin:
            try:
                answer = {"ok": _call(bundle, json.loads(line))}
            except (peers.PeerError, subprocess.TimeoutExpired, OSError, ValueError) as e:
                answer = {"error": str(e)}
            print(json.dumps(answer), file=wout, flush=True)
    finally:
        left = remove_hugetlb_cgroups(peer_cgroup)
        if left:
            print(json.dumps({"left": left}), file=wout, flush=True)


class PeerNamespace:
    """The bench's side: start the server, send requests, stop it."""

    def __init__(self, bundle: Bundle, peer_cgroup: str) -> None:
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable, "-m",
             "bench.peerns", str(bundle.dir), peer_cgroup],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parents[1])
        hello = self._read()
        if "error" in hello:
            self.close()
            raise peers.PeerError(hello["error"])
        self.did: str = hello["did"]
        self.left: list[str] = []

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise peers.PeerError(f"the peers' namespace server ended (exit {self.proc.wait()})")
        got: dict[str, Any] = json.loads(line)
        return got

    def call(self, **req: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise peers.PeerError(answer["error"])
        return answer["ok"]

    def oci_once(self, tool: str, state: Path, i: int) -> float:
        return float(self.call(op="oci_once", tool=tool, state=str(state), i=i))

    def probe_oci(self, tool: str, state: Path) -> dict[str, str]:
        got: dict[str, str] = self.call(op="probe_oci", tool=tool, state=str(state))
        return got

    def run_nspawn(self, runs: int) -> Sample:
        got = self.call(op="run_nspawn", runs=runs)
        return Sample(values=list(got["values"]), note=got["note"])

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        if self.proc.stdout:
            for line in self.proc.stdout:
                self.left += json.loads(line).get("left", [])
            self.proc.stdout.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.stdin, sys.stdout)
