"""The bench on the real host (root): its runner, its JSON, and that it leaves nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.hostguard import HostGuard, parse_rules, peer_lock

REPO = Path(__file__).resolve().parents[3]


def _bench(tmp_path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-peers", "--out", str(out), *args],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].startswith("scenario")
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def _nothing_left(d: dict) -> None:  # type: ignore[type-arg]
    """No mount under the run's work dir, which is gone, and none of its cgroup parents
    (its own: another developer's bench may be running on this shared host)."""
    workdir = d["workdir"]
    assert workdir and not Path(workdir).exists()
    assert f"{workdir}/" not in Path("/proc/self/mounts").read_text()
    assert all(p.startswith("composer-bench-") for p in d["cgroup_parents"])
    for parent in d["cgroup_parents"]:
        assert not list(Path("/sys/fs/cgroup").glob(f"*/{parent}"))


def test_load_scenario_writes_json(tmp_path: Path) -> None:
    d = _bench(tmp_path, "--only", "load")
    assert d["mode"] == "quick" and d["errors"] == {}
    (row,) = d["rows"]
    assert row["scenario"].startswith("load") and row["ours"]["runs"] == 5
    assert all(v > 0 for v in row["ours"]["values"])
    assert row["target_met"] in (True, False)
    assert d["extra"]["load_stack"]["services"] == 200


def test_launch_scenario_through_the_engine_leaves_nothing(tmp_path: Path) -> None:
    d = _bench(tmp_path, "--only", "launch")
    rows = {r["scenario"]: r for r in d["rows"]}
    none = rows["create+start+wait+remove /bin/true, no network"]
    bridge = rows["create+start+wait+remove /bin/true, bridge network"]
    assert none["ours"]["runs"] == 10 and none["peers"] == {}, none["ours"].get("note")
    assert bridge["ours"]["runs"] == 10, bridge["ours"].get("note")
    # the total includes remove, as a peer's `run` deletes its container
    phases = [rows[f"  phase: {p} (no network)"]["ours"]["values"] for p in ("create", "start", "wait", "remove")]
    for i, total in enumerate(none["ours"]["values"]):
        assert abs(total - sum(ph[i] for ph in phases)) < 0.01
    assert rows["  phase:   launch (no network)"]["ours"]["runs"] == 10
    assert rows["  phase:   launch: lo up / attach (bridge)"]["ours"]["runs"] == 10
    # what our container got, seen from inside: what the OCI bundle gives the peers
    for key in ("ours (none)", "ours (bridge)"):
        assert d["extra"]["probe"][key] == "lo_flags=0x9 seccomp=2 cgroup_ns=own root_fstype=overlay"
    assert d["cleanup"] == []  # nothing was found left over
    _nothing_left(d)


@pytest.fixture
def chains():  # type: ignore[no-untyped-def]
    made = ["NETAVARK-CMPBTEST", "CMPBTEST-KEEP"]
    yield made
    for rule in (["-D", "OUTPUT", "-d", "127.0.0.254/32", "-j", "NETAVARK-CMPBTEST"],
                 ["-D", "OUTPUT", "-d", "127.0.0.253/32", "-j", "CMPBTEST-KEEP"]):
        subprocess.run(["iptables", "-w", *rule], capture_output=True)
    for c in made:
        subprocess.run(["iptables", "-w", "-F", c], capture_output=True)
        subprocess.run(["iptables", "-w", "-X", c], capture_output=True)


def test_hostguard_removes_exactly_the_peer_chain(chains: list[str]) -> None:
    with peer_lock():  # no other bench's dockerd makes chains inside this snapshot
        _guarded(chains)


def _guarded(chains: list[str]) -> None:
    guard = HostGuard.snapshot()
    for c in chains:
        subprocess.run(["iptables", "-w", "-N", c], check=True)
    subprocess.run(["iptables", "-w", "-A", "OUTPUT", "-d", "127.0.0.254/32", "-j", "NETAVARK-CMPBTEST"], check=True)
    subprocess.run(["iptables", "-w", "-A", "OUTPUT", "-d", "127.0.0.253/32", "-j", "CMPBTEST-KEEP"], check=True)
    removed = guard.restore()
    assert any("-X NETAVARK-CMPBTEST" in r for r in removed)
    assert not any("failed" in r for r in removed)
    now = parse_rules(subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout)
    assert "NETAVARK-CMPBTEST" not in now.chains
    assert "CMPBTEST-KEEP" in now.chains  # not a peer's: untouched
    assert "-A OUTPUT -d 127.0.0.253/32 -j CMPBTEST-KEEP" in now.rules


def test_network_scenario_from_real_containers_leaves_nothing(tmp_path: Path) -> None:
    d = _bench(tmp_path, "--only", "network")
    assert d["errors"] == {} and d["cleanup"] == []
    rows = {r["scenario"]: r for r in d["rows"]}
    nat = rows["published port throughput, container (nft DNAT)"]
    assert nat["ours"]["values"][0] > 0 and nat["peers"]["direct"]["values"][0] > 0
    assert rows["published port throughput, container (proxy)"]["ours"]["values"][0] > 0
    assert 0 < rows["dns lookup from a container (embedded dns)"]["ours"]["values"][0] < 100
    _nothing_left(d)
