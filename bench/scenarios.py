"""The scenarios, each a function `(ctx) -> list[Row]` that never raises on a timing.

A failure inside a scenario becomes a note on its row (the bench goes on); the peers are
cleaned up after each peer (HostGuard) and our state roots after each of ours.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import docker, memory, netload, peerns, peers, stacks
from bench.hostguard import HostGuard, peer_lock
from bench.ours import PHASES, START_PHASES, BenchError, ComposerCli, cleanup_state, engine_true
from bench.rootfs import PEER_CGROUP, Bundle, make_bundle
from bench.stats import Row, Sample, check

MIB = 1024 * 1024


@dataclass
class Context:
    workdir: Path
    quick: bool
    peers: bool
    log: Callable[[str], None]
    extra: dict[str, Any] = field(default_factory=dict)  # goes into the JSON as it is
    cleanup: list[str] = field(default_factory=list)  # what was removed after whom
    _bundle: Bundle | None = None

    def runs(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @property
    def bundle(self) -> Bundle:
        if self._bundle is None:
            self._bundle = make_bundle(self.workdir / "peers", shutil.which("runc"))
        return self._bundle

    @contextlib.contextmanager
    def peer(self, name: str) -> Iterator[None]:
        """Around one peer: snapshot the host, then remove exactly what the peer left; under
        the host-wide peer lock, so another bench's peers never run inside our snapshot."""
        with peer_lock() as waited:
            if waited:
                self.log(f"{name}: waited for another bench's peers to finish")
            guard = HostGuard.snapshot()
            try:
                yield
            finally:
                removed = guard.restore() + [f"cgroup {p} (left)" for p in peers.remove_peer_cgroups()]
                self.cleanup += [f"{name}: {r}" for r in removed]


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None


# ---------------------------------------------------------------- (1) one-shot /bin/true


ENGINE_NONE = "create+start+wait+remove /bin/true, no network"
ENGINE_BRIDGE = "create+start+wait+remove /bin/true, bridge network"
ENGINE_NOTE = ("ours: Engine API in one process (no CLI, no daemon round trip), network_mode "
               "none, Docker's default seccomp profile and 14 caps, overlay root, "
               "mnt/uts/ipc/pid/net/cgroup namespaces, lo up, a cgroup, /etc/hosts etc.; "
               "runc/crun: `run` of an OCI bundle given the same (bench/oci.py), on a fresh "
               "overlay mounted before and unmounted after each run (timed); systemd-nspawn: "
               "plain dir, no seccomp profile of Docker's; podman: the whole `podman run --rm` CLI")


def crun_ratio(row: Row, limit: float = 1.5) -> Row:
    """The issue's engine target: ours p50 <= 1.5x crun's in the same run."""
    r = row.ratio("crun")
    row.met = None if r is None else r <= limit
    return row


def launch(ctx: Context) -> list[Row]:
    """Ours without network interleaved with runc and crun (one run of each after each of
    ours, so the host's load hits all alike), then ours on a bridge, then nspawn and podman."""
    runs, warmup = ctx.runs(50, 10), 3
    results: dict[str, dict[str, Sample]] = {}
    oci = [t for t in ("runc", "crun") if _have(t) and _have("runc")] if ctx.peers else []
    nspawn = ctx.peers and _have("systemd-nspawn")
    notes: dict[str, Sample] = {}
    inter = peers.Interleaved({}, warmup)
    with contextlib.ExitStack() as stack:
        ns = None
        if oci or nspawn:  # crun and nspawn need a v1 hugetlb on a hybrid host: see peerns
            try:
                ns = peerns.PeerNamespace(ctx.bundle, PEER_CGROUP)
                stack.callback(_note_left, ctx, ns)  # after the close below (last in, first out)
                stack.callback(ns.close)
                ctx.extra["hugetlb_trick"] = ns.did
            except peers.PeerError as e:
                notes.update({t: Sample(note=str(e)) for t in (*oci, "nspawn")})
                oci, nspawn = [], False
        if oci and ns is not None:
            stack.enter_context(ctx.peer(" + ".join(oci)))
            for tool in oci:
                _probe(ctx, tool, ns)
                inter.runs[tool] = functools.partial(ns.oci_once, tool,
                                                     ctx.workdir / f"{tool}-state")
        results["none"] = _engine(ctx, "none", runs, warmup, inter if oci else None)
        if nspawn and ns is not None:
            with ctx.peer("systemd-nspawn"):
                notes["nspawn"] = ns.run_nspawn(runs)
    for tool, s in inter.samples.items():
        ctx.log(f"(1) {tool} (interleaved): {_p50(s)}")
    results["bridge"] = _engine(ctx, "bridge", runs, warmup, None)

    none = Row(ENGINE_NONE, "ms", results["none"]["total"], target="p50 <= 1.5x crun",
               note=ENGINE_NOTE)
    bridge = Row(ENGINE_BRIDGE, "ms", results["bridge"]["total"])
    if ctx.peers:
        for tool in ("runc", "crun", "systemd-nspawn"):
            if not _have(tool):
                none.peers[tool] = Sample(note="not installed")
        none.peers.update(inter.samples)
        none.peers.update(notes)
        if _have("podman") and not ctx.quick:
            prow = ctx.runs(50, 5)
            with ctx.peer("podman"):
                pm = peers.Podman(ctx.workdir / "podman")
                try:
                    pm.setup(ctx.bundle.tarball)
                    none.peers["podman"] = peers.run_podman(pm, prow, network_none=True)
                    bridge.peers["podman"] = peers.run_podman(pm, prow, network_none=False)
                except peers.PeerError as e:
                    none.peers["podman"] = Sample(note=str(e))
                finally:
                    pm.teardown()
            ctx.log(f"(1) podman run --rm: {_p50(none.peers.get('podman'))} / "
                    f"{_p50(bridge.peers.get('podman'))} (none/bridge)")
    rows = [crun_ratio(none), bridge]
    for key, name in (("none", "no network"), ("bridge", "bridge")):
        for phase in (*PHASES, *START_PHASES):
            got = results[key].get(phase)
            if got is None or not got.values or (key == "bridge" and phase != START_PHASES[-1]):
                continue
            label = phase.replace("start: ", "  ") if phase.startswith("start: ") else phase
            rows.append(Row(f"  phase: {label} ({name})", "ms", got))
    return rows


def _engine(ctx: Context, key: str, runs: int, warmup: int,
            between: Callable[[int], None] | None) -> dict[str, Sample]:
    """engine_true on a private state root, cleaned up after (leftovers into ctx.cleanup)."""
    wd = ctx.workdir / f"engine-{key}"
    try:
        res = asyncio.run(engine_true(wd, runs, network=key == "bridge", warmup=warmup,
                                      probe=True, between=between))
    except Exception as e:  # noqa: BLE001 - reported, never fatal
        res = {"total": Sample(note=f"failed: {e}")}
    finally:
        left = cleanup_state(wd / "root", wd / "run", wd)
        ctx.cleanup += [f"engine ({key}): leftover {x}" for x in left]
    if "probe" in res:
        ctx.extra.setdefault("probe", {})[f"ours ({key})"] = res.pop("probe").note
    ctx.log(f"(1) engine /bin/true, network {key}: {_p50(res['total'])}")
    return res


def _note_left(ctx: Context, ns: peerns.PeerNamespace) -> None:
    ctx.cleanup += [f"peers' hugetlb cgroup left: {x}" for x in ns.left]


def _probe(ctx: Context, tool: str, ns: peerns.PeerNamespace) -> None:
    """What the OCI bundle gives a container under `tool`, seen from inside (into the JSON)."""
    try:
        ctx.extra.setdefault("probe", {})[tool] = ns.probe_oci(tool, ctx.workdir / f"{tool}-state")
    except (peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
        ctx.extra.setdefault("probe", {})[tool] = f"failed: {e}"


def _p50(s: Sample | None) -> str:
    if s is None:
        return "n/a"
    return f"p50 {s.p50:.1f} ms" if s.values else (s.note or "n/a")


# ---------------------------------------------------------------- (2)-(4) up/down, memory


def stacks_and_memory(ctx: Context) -> list[Row]:
    files = {
        "ten": stacks.write(ctx.workdir / "stacks", "ten", stacks.independent(10)),
        "chain": stacks.write(ctx.workdir / "stacks", "chain", stacks.chain(3)),
        "fifty": stacks.write(ctx.workdir / "stacks", "fifty", stacks.independent(50)),
    }
    runs = ctx.runs(5, 2)
    tag = f"cmpbench{str(time.time_ns())[-6:]}"
    samples = {k: Sample() for k in ("ten_up", "ten_down", "chain_up", "chain_down",
                                     "fifty_up", "fifty_down", "chain_beyond")}
    mem: dict[int, memory.MemoryReport] = {}
    cli = ComposerCli(ctx.workdir / "cli")
    try:
        t = time.perf_counter()
        cli(files["ten"], f"{tag}warm", "up", "-d")
        ctx.extra["first_up_with_daemon_start_ms"] = round((time.perf_counter() - t) * 1000, 1)
        cli(files["ten"], f"{tag}warm", "down")
        for name, n_runs in (("ten", runs), ("chain", runs), ("fifty", ctx.runs(3, 1))):
            for r in range(n_runs):
                project = f"{tag}{name}"
                since = time.time()
                samples[f"{name}_up"].values.append(cli(files[name], project, "up", "-d"))
                if name == "chain":  # what of that `up` was not the health checks' own time
                    time.sleep(0.3)  # the last service's check, so the events are all there
                    events = cli.output(files[name], project, "events", "--json", "--since",
                                        f"{since:.6f}", "--until", f"{time.time():.6f}")
                    waits = stacks.health_waits(events)
                    samples["chain_beyond"].values.append(samples["chain_up"].values[-1] - waits)
                if r == 0 and name in ("ten", "fifty") and (pid := cli.daemon_pid()):
                    mem[10 if name == "ten" else 50] = memory.measure(pid)
                samples[f"{name}_down"].values.append(cli(files[name], project, "down"))
            ctx.log(f"(2/3) composer {name}: up {_p50(samples[f'{name}_up'])}, "
                    f"down {_p50(samples[f'{name}_down'])}")
    except (BenchError, OSError, ValueError) as e:
        ctx.log(f"(2/3) composer failed: {e}")
        for s in samples.values():
            if not s.values:
                s.note = f"failed: {e}"
    finally:
        left = cli.close()
        ctx.cleanup += [f"composer cli: leftover {x}" for x in left]

    # the peers: podman-compose (podman has no daemon) and docker-compose (dockerd+containerd)
    by_peer: dict[str, dict[str, Sample]] = {}
    peer_mem: dict[str, dict[str, Any]] = {}
    if ctx.peers and not ctx.quick:
        if _have("podman-compose"):
            by_peer["podman-compose"], peer_mem["podman-compose"] = podman_compose(ctx, files, runs)
        if _have("docker-compose") and docker.installed():
            by_peer["docker-compose"], peer_mem["docker-compose"] = docker_compose(ctx, files, runs)

    def beside(key: str) -> dict[str, Sample]:
        return {name: s[key] for name, s in by_peer.items()}

    rows = [
        check(Row("up -d, 10 independent services", "ms", samples["ten_up"], beside("ten_up"),
                  target="<= 400 ms"), 400),  # issue 15's targets
        check(Row("down, 10 independent services", "ms", samples["ten_down"], beside("ten_down"),
                  target="<= 300 ms"), 300),
        Row("up -d, 3-service healthy chain", "ms", samples["chain_up"], beside("chain_up"),
            note="podman-compose 1.0.3 only orders (it ignores condition: service_healthy) and "
                 "podman runs no health checks without systemd; docker-compose 1.29 waits "
                 "for each healthy, as we do"),
        check(Row("  of which beyond the health waits", "ms", samples["chain_beyond"],
                  target="<= 300 ms",
                  note="the `up -d` less each dependency's start-to-healthy (check interval "
                       "100 ms plus the check's run), from `composer events`"), 300),
        Row("down, 3-service healthy chain", "ms", samples["chain_down"], beside("chain_down")),
        Row("up -d, 50 services", "ms", samples["fifty_up"]),
        Row("down, 50 services", "ms", samples["fifty_down"]),
    ]
    ctx.extra["memory"] = {str(n): m.to_json() for n, m in mem.items()}
    for name, m in peer_mem.items():
        ctx.extra["memory"][f"{name}_10"] = m
    rows += memory_rows(mem, peer_mem)
    return rows


def _mib(m: dict[str, Any], key: str) -> Sample:
    """One figure of a peer's memory report, or a note when its processes were not found."""
    if key not in m:
        return Sample(note=str(m.get("note", "not measured")))
    return Sample([m[key]])


def memory_rows(mem: dict[int, memory.MemoryReport], peer_mem: dict[str, dict[str, Any]]) -> list[Row]:
    """Daemon and per-container rows, ours beside each peer's: the daemon's RSS and PSS
    (podman has none), the whole cost per container (daemon included) and the marginal one
    (the helpers each container adds: our shim + tini; conmon + catatonit; containerd-shim
    + docker-init)."""
    helpers = {"podman-compose": "conmon+catatonit", "docker-compose": "shim+docker-init"}
    rows: list[Row] = []
    dk = peer_mem.get("docker-compose", {})
    if 10 in mem:
        daemons = {"dockerd+containerd": _mib(dk, "daemons_rss")} if dk else {}
        rows.append(check(Row("composerd RSS, 10 containers", "MiB",
                              Sample([mem[10].daemon_rss / MIB]), daemons, target="<= 40 MiB"), 40))
        daemons = {"dockerd+containerd": _mib(dk, "daemons_pss")} if dk else {}
        rows.append(Row("composerd PSS, 10 containers", "MiB",
                        Sample([mem[10].daemon_pss / MIB]), daemons))
    for n in (10, 50):
        if n not in mem:
            continue
        peer_n = peer_mem if n == 10 else {}  # the peers run 10
        for kind, total, marginal, target in (
                ("USS", mem[n].per_container, mem[n].per_shim_and_init, 2.0),
                ("PSS", mem[n].per_container_pss, mem[n].per_shim_and_init_pss, None)):
            k = kind.lower()
            whole = {helpers[p]: _mib(m, f"whole_per_container_{k}") for p, m in peer_n.items()}
            row = Row(f"our {kind} per container ({n}), total/{n}", "MiB", Sample([total / MIB]),
                      whole, target=f"<= {target:g} MiB" if target else "")
            rows.append(check(row, target) if target else row)
            # issue 15: what one more container costs of ours (the monitor's share + its
            # init), <= 1.0 MiB PSS at 50, beside conmon's and containerd-shim's
            each = Row(f"  of which shim+init {kind} per container ({n})", "MiB",
                       Sample([marginal / MIB]),
                       {helpers[p]: _mib(m, f"per_container_{k}") for p, m in peer_n.items()},
                       target="<= 1.0 MiB" if (kind, n) == ("PSS", 50) else "")
            rows.append(check(each, 1.0) if each.target else each)
    return rows


def compose_updown(ctx: Context, tool: str, env: dict[str, str], files: dict[str, Path], runs: int,
                   running: Callable[[], int], memory_of: Callable[[], dict[str, Any]],
                   ) -> tuple[dict[str, Sample], dict[str, Any]]:
    """`<tool> -p NAME -f FILE up -d` / `down` of the ten and the chain stacks, `runs` times,
    with the peer already set up (env); its memory with the ten up (first run). After each
    `up` the running containers are counted: podman-compose 1.0.3 exits 0 when a `podman
    run` of it failed (e.g. catatonit missing for `init: true`), and figures (and a memory
    of no process: 0.00 per container) would be of nothing."""
    out = {k: Sample() for k in ("ten_up", "ten_down", "chain_up", "chain_down")}
    mem: dict[str, Any] = {}
    short = "pc" if tool == "podman-compose" else "dc"
    try:
        for name in ("ten", "chain"):
            for r in range(runs):
                base = [tool, "-p", f"cmpbench{short}{name}", "-f", str(files[name])]
                out[f"{name}_up"].values.append(peers.timed([*base, "up", "-d"], env=env, timeout=300))
                expect = 10 if name == "ten" else 3
                if (n := running()) != expect:
                    raise peers.PeerError(f"{tool} up -d started {n} of {expect} containers")
                if r == 0 and name == "ten":
                    mem = memory_of()
                out[f"{name}_down"].values.append(peers.timed([*base, "down"], env=env, timeout=300))
            ctx.log(f"(2) {tool} {name}: up {_p50(out[f'{name}_up'])}, down {_p50(out[f'{name}_down'])}")
    except (peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
        ctx.log(f"(2) {tool} failed: {e}")
        _fail(out, e)
        mem = {"note": f"failed: {e}"}
    return out, mem


def podman_compose(ctx: Context, files: dict[str, Path], runs: int) -> tuple[dict[str, Sample], dict[str, Any]]:
    """podman-compose 1.0.3 on the same files, a private podman; its memory: conmon and
    catatonit per container (no daemon)."""
    def memory_of() -> dict[str, Any]:
        mem = memory.peer_memory({"conmon": pm.conmon_pids(), "catatonit": _catatonits(pm)}, 10)
        mem["whole_per_container_uss"] = mem.get("per_container_uss")  # no daemon
        mem["whole_per_container_pss"] = mem.get("per_container_pss")
        return {k: v for k, v in mem.items() if v is not None}

    with ctx.peer("podman-compose"):
        pm = peers.Podman(ctx.workdir / "podman-compose")
        try:
            pm.setup(ctx.bundle.tarball)
            return compose_updown(ctx, "podman-compose", pm.env, files, runs, pm.running, memory_of)
        except (peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
            ctx.log(f"(2) podman failed: {e}")
            out = {k: Sample(note=f"failed: {e}") for k in ("ten_up", "ten_down", "chain_up", "chain_down")}
            return out, {"note": f"failed: {e}"}
        finally:
            pm.teardown()


def docker_compose(ctx: Context, files: dict[str, Path], runs: int) -> tuple[dict[str, Sample], dict[str, Any]]:
    """docker-compose 1.29 `up -d` / `down` on the same files, against a private dockerd;
    its memory with the 10 services up: containerd-shim-runc-v2 and docker-init (tini, as
    `init: true` asks) per container, dockerd and containerd as the daemons."""
    with ctx.peer("docker-compose"):
        dk = docker.Docker(ctx.workdir / "docker-compose")
        try:
            dk.setup(ctx.bundle.tarball)
            return compose_updown(ctx, "docker-compose", dk.env, files, runs, dk.running,
                                  lambda: docker_memory(dk, 10))
        except (peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
            ctx.log(f"(2) dockerd failed: {e}")
            out = {k: Sample(note=f"failed: {e}") for k in ("ten_up", "ten_down", "chain_up", "chain_down")}
            return out, {"note": f"failed: {e}"}
        finally:
            ctx.cleanup += [f"docker-compose: forced {x}" for x in dk.teardown()]


def docker_memory(dk: docker.Docker, containers: int) -> dict[str, Any]:
    shims = dk.shim_pids()
    kids = memory.children_map()
    inits = [c for s in shims for c in kids.get(s, [])
             if memory.cmdline(c).startswith(memory.INIT_MARKER)]
    mem = memory.peer_memory({"containerd_shim": shims, "docker_init": inits}, containers)
    daemons = memory.peer_memory(dk.daemon_pids(), 0)
    del daemons["containers"]
    mem.update(daemons)
    total = memory.usage([p for pids in dk.daemon_pids().values() for p in pids])
    mem["daemons_rss"] = round(total.rss / MIB, 3)
    mem["daemons_pss"] = round(total.pss / MIB, 3)
    mem["daemons_uss"] = round(total.uss / MIB, 3)
    if "per_container_uss" in mem:
        mem["whole_per_container_uss"] = round(mem["per_container_uss"] + total.uss / MIB / containers, 3)
        mem["whole_per_container_pss"] = round(mem["per_container_pss"] + total.pss / MIB / containers, 3)
    return mem


def _fail(samples: dict[str, Sample], e: BaseException) -> None:
    for s in samples.values():
        if not s.values:
            s.note = f"failed: {e}"


def _catatonits(pm: peers.Podman) -> list[int]:
    """The init (catatonit, `init: true`) of each container of this podman: below its conmons."""
    conmons = set(pm.conmon_pids())
    kids = memory.children_map()
    inits = (b"catatonit", b"podman-init", b"/dev/init")
    found, todo = [], list(conmons)
    while todo:
        for c in kids.get(todo.pop(), []):
            todo.append(c)
            if memory.cmdline(c).split(b"\0")[0].endswith(inits):
                found.append(c)
    return found


# ---------------------------------------------------------------- (5)-(7)


def network(ctx: Context) -> list[Row]:
    """Published-port throughput (nft DNAT, proxy) and DNS latency, from real containers of
    ours on a composer bridge network (bench/network.py); the attach time is scenario 1's
    bridge phase."""
    size = (1 << 30) if not ctx.quick else (256 << 20)
    try:
        nums, raw = netload.network(size, ctx.workdir / "network")
    except Exception as e:  # noqa: BLE001
        ctx.log(f"(5/6) network bench failed: {e}")
        return [Row(DNS_ROW, "ms", Sample(note=f"failed: {e}"), target="p50 <= 1 ms")]
    ctx.extra["network_rows"] = [list(r) for r in raw if not r[0].startswith("leftover")]
    ctx.cleanup += [f"network: {r[0]} {r[1]}" for r in raw if r[0].startswith("leftover")]
    rows = []
    direct = Sample([nums["direct_mibs"]]) if "direct_mibs" in nums else Sample()
    for key, label in (("published_nat_mibs", "published port throughput, container (nft DNAT)"),
                       ("published_proxy_mibs", "published port throughput, container (proxy)")):
        if key in nums:
            r = Row(label, "MiB/s", Sample([nums[key]]), {"direct": direct},
                    target=">= 0.8x direct", higher_is_better=True)
            ratio = r.ratio("direct")
            r.met = None if ratio is None else ratio >= 0.8
            rows.append(r)
    if "dns_ms" in nums:
        rows.append(check(Row(DNS_ROW, "ms", Sample([nums["dns_ms"]]), target="p50 <= 1 ms"), 1))
    ctx.log("(5/6) network done")
    return rows


DNS_ROW = "dns lookup from a container (embedded dns)"


def load(ctx: Context) -> list[Row]:
    try:
        s, info = netload.load_stack(200, ctx.runs(15, 5))
    except Exception as e:  # noqa: BLE001
        s, info = Sample(note=f"failed: {e}"), {}
    ctx.extra["load_stack"] = info
    ctx.log(f"(7) load 200 services: {_p50(s)}")
    return [check(Row("load+validate+graph, 200-service stack", "ms", s, target="< 200 ms"), 200)]


# ---------------------------------------------------------------- (8) what the user types


CLI_VERBS: tuple[tuple[str, tuple[str, ...], float | None], ...] = (
    # (row, argv after `-f FILE -p NAME`, target p50 in ms from issue 15)
    ("composer ps, 10 containers", ("ps",), 100),
    ("composer port", ("port", "s0", "80"), 100),
    ("composer logs (no follow)", ("logs", "s1"), 100),
    ("composer exec -T svc true", ("exec", "-T", "s1", "true"), 100),
)
RUN_BRIDGE = "composer run --rm svc true (bridge)"
RUN_NONE = "composer run --rm svc true (network none)"
PS_ROW = "composer ps, 10 containers"
EXEC_ROW = "composer exec -T svc true"
EDITED_ROW = "composer ps, stack file just edited"  # composer.stackcache's miss: the full loader


@dataclass
class Job:
    """One command of a round: its row, whose it is ("" = ours), how to time it."""
    row: str
    peer: str
    run: Callable[[], float]


def cli(ctx: Context) -> list[Row]:
    """The CLI as a user feels it: a new `python -m composer.cli` process per command,
    composerd already running, a 10-service project up; runs interleaved so that the load
    of the host hits every row alike. `python3 -c pass` is the floor every row pays.

    With peers, in the same rounds: `docker-compose ps` and `docker ps` of a 10-container
    docker-compose project beside `composer ps`; `docker run --rm busybox /bin/true` and
    `podman run --rm busybox /bin/true` (default bridge network, and `--network none`)
    beside `composer run --rm <svc> true` of a busybox service without `init:` (on the
    project's bridge network, and with `network_mode: none`)."""
    runs = ctx.runs(9, 3)
    file = stacks.write(ctx.workdir / "stacks", "cli", stacks.with_port(stacks.independent(10)))
    one_shot = stacks.write(ctx.workdir / "stacks", "runrm", stacks.one_shot())
    tag = str(time.time_ns())[-6:]
    project, run_project = f"cmpbench{tag}cli", f"cmpbench{tag}run"
    bare = {"python3 -c pass (interpreter start)": (("-c", "pass"), None),
            "composer --help": (("--help",), 60.0), "composer version": (("version",), 60.0)}
    targets: dict[str, float | None] = {**{n: t for n, (_, t) in bare.items()},
                                        **{n: t for n, _, t in CLI_VERBS},
                                        EDITED_ROW: None, RUN_BRIDGE: 150.0, RUN_NONE: None}
    samples: dict[str, dict[str, Sample]] = {name: {"": Sample()} for name in targets}
    ours = ComposerCli(ctx.workdir / "cli-verbs")
    jobs: list[Job] = []
    for name, (argv, _) in bare.items():
        if argv[0] == "-c":
            jobs.append(Job(name, "", functools.partial(peers.timed, [sys.executable, *argv])))
        else:
            jobs.append(Job(name, "", functools.partial(ours.bare, *argv)))
    for name, argv, _ in CLI_VERBS:
        jobs.append(Job(name, "", functools.partial(ours, file, project, *argv)))
    # the same stack under another name, rewritten before each of its runs: `ps` right after
    # an edit, when the stack summary's cache misses and the full stack loader runs
    edited = file.with_name("compose-edited.yaml")

    def edited_ps() -> float:
        edited.write_text(file.read_text())
        return ours(edited, project, "ps")

    jobs.append(Job(EDITED_ROW, "", edited_ps))
    jobs.append(Job(RUN_BRIDGE, "", lambda: ours(one_shot, run_project, "run", "--rm", "bridge", "true")))
    jobs.append(Job(RUN_NONE, "", lambda: ours(one_shot, run_project, "run", "--rm", "none", "true")))
    with contextlib.ExitStack() as stack:  # unwinds last-in first: ours, the peers, the guard
        peer_jobs: list[Job] = []
        if ctx.peers:
            stack.enter_context(ctx.peer("docker + podman (cli)"))
            peer_jobs = _cli_peer_jobs(ctx, stack, file, samples)
        # ours goes down first, while DOCKER-USER (where composerd adds its rules when
        # dockerd runs) still exists
        stack.callback(lambda: ctx.cleanup.extend(
            f"composer cli verbs: leftover {x}" for x in ours.close()))
        try:
            ours(file, project, "up", "-d")  # starts composerd: not counted
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            ctx.log(f"(cli) composer up failed: {e}")
            for by in samples.values():
                by[""].note = f"failed: {e}"
            jobs = []
        _rounds(ctx, jobs + peer_jobs, samples, runs)
    ctx.log("(cli) " + ", ".join(f"{n.removeprefix('composer ')}{' ' + p if p else ''} {_p50(s)}"
                                 for n, by in samples.items() for p, s in by.items()))
    rows = []
    for name, by in samples.items():
        target = targets[name]
        row = Row(name, "ms", by[""], {p: s for p, s in by.items() if p},
                  target=f"<= {target:g} ms" if target else "")
        rows.append(check(row, target) if target else row)
    return rows


def _rounds(ctx: Context, jobs: list[Job], samples: dict[str, dict[str, Sample]], runs: int) -> None:
    """One uncounted warm-up round, then `runs` rounds of every job in turn. A job that fails
    gets its note and leaves the rounds; the others go on."""
    for i in range(runs + 1):
        for job in list(jobs):
            try:
                ms = job.run()
            except (BenchError, peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
                samples[job.row][job.peer].note = f"failed: {e}"
                ctx.log(f"(cli) {job.peer or 'composer'} {job.row}: failed: {e}")
                jobs.remove(job)
                continue
            if i:
                samples[job.row][job.peer].values.append(ms)


def _cli_peer_jobs(ctx: Context, stack: contextlib.ExitStack, file: Path,
                   samples: dict[str, dict[str, Sample]]) -> list[Job]:
    """Start dockerd (+ a 10-container docker-compose project of `file`) and a private
    podman; their jobs for the rounds. A peer that cannot start gets notes, not jobs."""
    jobs: list[Job] = []
    ps_peers = ("docker-compose ps", "docker ps")
    run_peers = ((RUN_BRIDGE, ()), (RUN_NONE, ("--network", "none")))
    if docker.installed() and _have("docker-compose"):
        dk = docker.Docker(ctx.workdir / "docker-cli")
        stack.callback(lambda: ctx.cleanup.extend(f"docker (cli): forced {x}" for x in dk.teardown()))
        base = ["docker-compose", "-p", f"cmpbenchdc{str(time.time_ns())[-6:]}", "-f", str(file)]
        try:
            dk.setup(ctx.bundle.tarball)
            peers.timed([*base, "up", "-d"], env=dk.env, timeout=300)
            if (n := dk.running()) != 10:
                raise peers.PeerError(f"docker-compose up -d started {n} of 10 containers")
            stack.callback(lambda: subprocess.run([*base, "down", "-t", "1"], env=dk.env,
                                                  capture_output=True, timeout=300))
            jobs.append(Job(PS_ROW, ps_peers[0], lambda: peers.timed([*base, "ps"], env=dk.env)))
            jobs.append(Job(PS_ROW, ps_peers[1], lambda: peers.timed([dk.cli, "ps"], env=dk.env)))
            # docker-compose 1.29 names it <project>_<service>_1; no -t: as `exec -T`
            target = f"{base[2]}_s1_1"
            jobs.append(Job(EXEC_ROW, "docker exec", functools.partial(
                peers.timed, [dk.cli, "exec", target, "true"], env=dk.env)))
            for row, extra in run_peers:
                argv = [dk.cli, "run", "--rm", *extra, "busybox", "/bin/true"]
                jobs.append(Job(row, "docker run --rm", functools.partial(peers.timed, argv, env=dk.env)))
        except (peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
            ctx.log(f"(cli) docker failed: {e}")
            for row, peer in ((PS_ROW, ps_peers[0]), (PS_ROW, ps_peers[1]), (EXEC_ROW, "docker exec"),
                              (RUN_BRIDGE, "docker run --rm"), (RUN_NONE, "docker run --rm")):
                samples[row][peer] = Sample(note=f"failed: {e}")
            jobs = []
    else:
        for peer in ps_peers:
            samples[PS_ROW][peer] = Sample(note="not installed")
        samples[EXEC_ROW]["docker exec"] = Sample(note="not installed")
    for row, _ in run_peers:
        for peer in ("docker run --rm", "podman run --rm"):
            samples[row].setdefault(peer, Sample(note="not installed"))
    if _have("podman"):
        pm = peers.Podman(ctx.workdir / "podman-cli")
        stack.callback(pm.teardown)
        try:
            pm.setup(ctx.bundle.tarball)
            podman_jobs = []
            for row, extra in run_peers:
                argv = ["podman", "run", "--rm", *extra, "busybox", "/bin/true"]
                podman_jobs.append(Job(row, "podman run --rm", functools.partial(peers.timed, argv, env=pm.env)))
            # exec into a running container of the same image, `init: true` as ours (s1)
            pm.podman("run", "-d", "--init", "--name", "cmpbench-exec", "busybox", "sleep", "600")
            podman_jobs.append(Job(EXEC_ROW, "podman exec", functools.partial(
                peers.timed, ["podman", "exec", "cmpbench-exec", "true"], env=pm.env)))
            for job in podman_jobs:
                samples[job.row][job.peer] = Sample()
            jobs += podman_jobs
        except (peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
            ctx.log(f"(cli) podman failed: {e}")
            for row, _ in run_peers:
                samples[row]["podman run --rm"] = Sample(note=f"failed: {e}")
            samples[EXEC_ROW]["podman exec"] = Sample(note=f"failed: {e}")
    else:
        samples[EXEC_ROW]["podman exec"] = Sample(note="not installed")
    for job in jobs:
        samples[job.row].setdefault(job.peer, Sample())
        if not samples[job.row][job.peer].values and samples[job.row][job.peer].note == "not installed":
            samples[job.row][job.peer] = Sample()
    return jobs


SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "launch": launch, "stacks": stacks_and_memory, "network": network, "load": load,
    "cli": cli,
}
