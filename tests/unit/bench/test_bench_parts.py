"""bench: stack files, memory roles, network rows, podman config, OCI config."""
from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest

from bench import memory, stacks
from bench.netload import parse_network_rows
from bench.peers import PODMAN_SUBNET, Podman
from bench.rootfs import PEER_CGROUP, oci_config
from composer.graph import build_graph
from composer.spec import LoadOptions, load_stack


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = stacks.write(tmp_path, "s", text)
    return load_stack(LoadOptions(files=[str(path)], environ={}, working_dir=str(path.parent)))


def test_independent_stack_loads(tmp_path: Path) -> None:
    stack = _load(tmp_path, stacks.independent(10))
    assert sorted(stack.services) == sorted(f"s{i}" for i in range(10))
    s0 = stack.services["s0"]
    assert s0.init is True and s0.image == "busybox"
    assert len(build_graph(stack).generations()) == 1


def test_chain_stack_waits_for_health(tmp_path: Path) -> None:
    stack = _load(tmp_path, stacks.chain(3))
    assert len(build_graph(stack).generations()) == 3
    c1 = stack.services["c1"]
    assert c1.healthcheck is not None and c1.healthcheck.interval == 0.1
    assert [(d.service, d.condition) for d in c1.depends_on] == [("c0", "service_healthy")]


def test_classify_roles_below_the_daemon_and_the_monitor() -> None:
    # composerd 1 (no children of ours); monitor 2 (not composerd's child) -> init 4 ->
    # sleep 5; -> sleep 7 (a container without init: true: pid 1 is its own command)
    kids = {0: [1, 2], 2: [4, 7], 4: [5]}
    mon = b"python3\0-m\0runtime.process.monitor\0/run/x/monitor.sock\0"
    cmd = {1: b"python3\0-m\0runtime.daemon\0", 2: mon, 4: mon, 5: b"sleep\0600\0",
           7: b"sleep\0600\0"}
    assert memory.find_monitor(b"/run/x", kids, cmd) == [2]  # 4 is its fork, an init
    assert memory.find_monitor(b"/run/y", kids, cmd) == []
    roles = memory.classify(1, [2], kids, cmd)
    assert roles["daemon"] == [1] and roles["monitor"] == [2] and roles["init"] == [4]
    assert sorted(roles["container"]) == [5, 7] and sorted(roles["init_slot"]) == [4, 7]
    # init: true is tini as /sbin/docker-init: ours, not the container's
    cmd[4] = b"/sbin/docker-init\0--\0sleep\0600\0"
    roles = memory.classify(1, [2], kids, cmd)
    assert roles["init"] == [4] and sorted(roles["container"]) == [5, 7]


def test_memory_of_this_process_is_plausible() -> None:
    me = os.getpid()
    u, r = memory.uss(me), memory.rss(me)
    assert 0 < u <= r
    report = memory.MemoryReport(2, 40 << 20, 50 << 20, 3 << 20, 4 << 20, 1 << 20, 1, 2)
    assert report.total_uss == 48 << 20
    assert report.per_container == 24 << 20 and report.per_shim_and_init == 3.5 * (1 << 20)
    d = report.to_json()
    assert d["daemon_rss"] == 50.0 and d["per_container_uss"] == 24.0 and d["unit"] == "MiB"


def test_parse_network_rows() -> None:
    rows = [("attach (veth+addr+route+dns), wall", "12.48 ms p50 (p90 17.37)", "<= 15 ms"),
            ("attach, daemon cpu time", "5.64 ms p50", ""),
            ("dns answer, udp from a container", "0.091 ms p50", "<= 1 ms"),
            ("throughput direct (host -> container ip)", "980 MiB/s", ""),
            ("throughput published, kernel DNAT (127.0.0.1)", "1418 MiB/s = 1.45x", ">= 0.8x"),
            ("throughput published, asyncio proxy (127.0.0.1)", "422 MiB/s = 0.43x", ">= 0.8x")]
    assert parse_network_rows(rows) == {"attach_ms": 12.48, "dns_ms": 0.091, "direct_mibs": 980.0,
                                        "published_nat_mibs": 1418.0, "published_proxy_mibs": 422.0}


def test_podman_config_is_private(tmp_path: Path) -> None:
    pm = Podman(tmp_path / "pm")
    pm.write_config()
    storage = (tmp_path / "pm/storage.conf").read_text()
    conf = (tmp_path / "pm/containers.conf").read_text()
    assert f'graphroot = "{tmp_path}/pm/graph"' in storage
    assert 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]' in conf
    assert 'runtime = "runc"' in conf and PODMAN_SUBNET in conf
    assert "static_dir" not in conf  # makes `podman run --rm` hang 20 s with podman 4.3
    env = pm.env
    assert env["CONTAINERS_CONF"].endswith("containers.conf")
    assert env["CONTAINERS_STORAGE_CONF"].endswith("storage.conf")


def test_oci_config_from_template() -> None:
    template = {"process": {"terminal": True, "args": ["sh"]}, "linux": {"namespaces": []}}
    cfg = oci_config(template, ["/bin/true"], "r1")
    assert cfg["process"] == {"terminal": False, "args": ["/bin/true"]}
    assert cfg["linux"]["cgroupsPath"] == f"/{PEER_CGROUP}/r1"  # type: ignore[index]
    assert template["process"]["terminal"] is True  # the template is not changed
    json.dumps(cfg)


def test_one_shot_stack_loads(tmp_path: Path) -> None:
    stack = _load(tmp_path, stacks.one_shot())
    assert stack.services["none"].network_mode == "none"
    assert not stack.services["bridge"].network_mode and not stack.services["bridge"].init


def test_pss_of_this_process_and_peer_memory() -> None:
    """PSS is read (the peers' figures read 0.00 when no process was found: the report
    says how many were read per role, and a role with none has no per-container figure)."""
    me = os.getpid()
    assert 0 < memory.pss(me) <= memory.rss(me)
    m = memory.peer_memory({"helper": [me], "gone": [2 ** 22 + 1]}, 2)
    assert m["helper_processes"] == 1 and m["gone_processes"] == 0
    assert 0 < m["helper_pss"] <= m["helper_rss"]
    assert abs(m["per_container_pss"] - m["helper_pss"] / 2) < 0.002
    assert "per_container_pss" not in memory.peer_memory({"conmon": []}, 10)  # not 0.00
    report = memory.MemoryReport(2, 40 << 20, 50 << 20, 3 << 20, 4 << 20, 0, 1, 2,
                                 daemon_pss=20 << 20, monitor_pss=2 << 20, inits_pss=2 << 20)
    assert report.per_container_pss == 12 << 20 and report.per_shim_and_init_pss == 2 << 20
    assert report.to_json()["per_container_shim_init_pss"] == 2.0


def test_docker_subnets_clash_check() -> None:
    from bench.docker import ADDRESS_POOL, BIP, host_networks

    nets = host_networks()
    assert nets  # at least loopback's 127.0.0.0/8
    assert ipaddress.ip_network(BIP, strict=False).subnet_of(ipaddress.ip_network("10.0.0.0/8"))
    assert not ipaddress.ip_network(BIP, strict=False).overlaps(ipaddress.ip_network(ADDRESS_POOL))


def test_cli_rounds_interleave_and_a_failing_job_leaves_with_a_note(tmp_path: Path) -> None:
    from bench.peers import PeerError
    from bench.scenarios import Context, Job, _rounds
    from bench.stats import Sample

    calls: list[str] = []

    def ok(name: str, ms: float):  # type: ignore[no-untyped-def]
        def run() -> float:
            calls.append(name)
            return ms
        return run

    def broken() -> float:
        calls.append("broken")
        raise PeerError("docker ps failed: boom")

    samples = {"ps": {"": Sample(), "docker ps": Sample()}, "run": {"": Sample()}}
    jobs = [Job("ps", "", ok("ours", 200.0)), Job("ps", "docker ps", broken), Job("run", "", ok("run", 500.0))]
    _rounds(Context(tmp_path, True, True, lambda _: None), jobs, samples, 2)
    assert calls == ["ours", "broken", "run", "ours", "run", "ours", "run"]  # warm-up round first
    assert samples["ps"][""].values == [200.0, 200.0] and samples["run"][""].values == [500.0, 500.0]
    assert samples["ps"]["docker ps"].values == [] and "boom" in samples["ps"]["docker ps"].note


def _event(t: str, service: str, action: str) -> str:
    return json.dumps({"time": f"2026-11-27T12:23:{t}Z", "type": "container", "action": action,
                       "id": service * 8, "service": service, "attributes": {}})


def test_the_chains_health_waits_are_each_dependencys_start_to_healthy() -> None:
    lines = [_event("26.627000000", "c0", "create"), _event("26.665000000", "c0", "start"),
             _event("26.782500000", "c0", "health_status: healthy"),
             _event("26.786000000", "c1", "create"), _event("26.861000000", "c1", "start"),
             _event("26.978000000", "c1", "health_status: healthy"),
             _event("27.039000000", "c2", "start"), _event("27.157000000", "c2", "health_status: healthy")]
    assert abs(stacks.health_waits("\n".join(lines)) - (117.5 + 117.0)) < 0.01
    without = [x for x in lines if "c1" not in x or "healthy" not in x]
    with pytest.raises(ValueError, match="health_status: healthy"):
        stacks.health_waits("\n".join(without))
