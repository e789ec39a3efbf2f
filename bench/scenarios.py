"""The scenarios, each a function `(ctx) -> list[Row]` that never raises on a timing.

A failure inside a scenario becomes a note on its row (the bench goes on); the peers are
cleaned up after each peer (HostGuard) and our state roots after each of ours.
"""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import memory, netload, peers, stacks
from bench.hostguard import HostGuard
from bench.ours import BenchError, ComposerCli, cleanup_state, engine_true
from bench.rootfs import Bundle, make_bundle
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
        """Around one peer: snapshot the host, then remove exactly what the peer left."""
        guard = HostGuard.snapshot()
        try:
            yield
        finally:
            removed = guard.restore() + [f"cgroup {p} (left)" for p in peers.remove_peer_cgroups()]
            self.cleanup += [f"{name}: {r}" for r in removed]


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None


# ---------------------------------------------------------------- (1) one-shot /bin/true


def launch(ctx: Context) -> list[Row]:
    runs = ctx.runs(50, 10)
    rows: list[Row] = []
    results: dict[str, dict[str, Sample]] = {}
    for network in (False, True):
        key = "bridge" if network else "none"
        wd = ctx.workdir / f"engine-{key}"
        try:
            results[key] = asyncio.run(engine_true(wd, runs, network=network))
        except Exception as e:  # noqa: BLE001 - reported, never fatal
            results[key] = {"total": Sample(note=f"failed: {e}")}
        finally:
            left = cleanup_state(wd / "root", wd / "run", wd)
            ctx.cleanup += [f"engine ({key}): leftover {x}" for x in left]
        ctx.log(f"(1) engine /bin/true, network {key}: p50 "
                f"{results[key]['total'].p50 if results[key]['total'].values else 'n/a'} ms")

    none = Row("create+start+wait /bin/true, no network", "ms", results["none"]["total"],
               target="p50 <= 50 ms")
    bridge = Row("create+start+wait /bin/true, bridge network", "ms", results["bridge"]["total"])
    if ctx.peers:
        for tool in ("runc", "crun", "systemd-nspawn"):
            if not _have(tool):
                none.peers[tool] = Sample(note="not installed")
        if _have("runc"):
            with ctx.peer("runc"):
                none.peers["runc"] = peers.run_oci("runc", ctx.bundle, ctx.workdir / "runc-state", runs)
            ctx.log(f"(1) runc: {_p50(none.peers['runc'])}")
        # crun and systemd-nspawn both fail while cgroup2 holds hugetlb (hybrid host)
        if _have("crun") or _have("systemd-nspawn"):
            t = time.perf_counter()
            try:
                with peers.hugetlb_v1() as how:
                    ctx.extra["hugetlb_trick"] = how
                    if _have("crun"):
                        with ctx.peer("crun"):
                            none.peers["crun"] = peers.run_oci("crun", ctx.bundle,
                                                               ctx.workdir / "crun-state", runs)
                        ctx.log(f"(1) crun: {_p50(none.peers['crun'])}")
                    if _have("systemd-nspawn"):
                        with ctx.peer("systemd-nspawn"):
                            none.peers["nspawn"] = peers.run_nspawn(ctx.bundle, runs)
                        ctx.log(f"(1) systemd-nspawn: {_p50(none.peers['nspawn'])}")
            except peers.PeerError as e:
                for tool in ("crun", "nspawn"):
                    none.peers.setdefault(tool, Sample(note=str(e)))
            ctx.extra["hugetlb_trick_s"] = round(time.perf_counter() - t, 1)
            ctx.extra["hugetlb_back_on_cgroup2"] = peers.hybrid_hugetlb()
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
    rows += [check(none, 50), bridge]
    for phase in ("create", "start", "wait", "remove"):
        s = results["none"].get(phase)
        if s is not None and s.values:
            rows.append(Row(f"  phase: {phase} (no network)", "ms", s))
    return rows


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
                                     "fifty_up", "fifty_down")}
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
                samples[f"{name}_up"].values.append(cli(files[name], project, "up", "-d"))
                if r == 0 and name in ("ten", "fifty") and (pid := cli.daemon_pid()):
                    mem[10 if name == "ten" else 50] = memory.measure(pid)
                samples[f"{name}_down"].values.append(cli(files[name], project, "down"))
            ctx.log(f"(2/3) composer {name}: up {_p50(samples[f'{name}_up'])}, "
                    f"down {_p50(samples[f'{name}_down'])}")
    except (BenchError, OSError) as e:
        ctx.log(f"(2/3) composer failed: {e}")
        for s in samples.values():
            if not s.values:
                s.note = f"failed: {e}"
    finally:
        left = cli.close()
        ctx.cleanup += [f"composer cli: leftover {x}" for x in left]

    peer_samples: dict[str, Sample] = {}
    conmon: dict[str, float] = {}
    if ctx.peers and not ctx.quick and _have("podman-compose"):
        peer_samples, conmon = podman_compose(ctx, files, runs)

    rows = [
        check(Row("up -d, 10 independent services", "ms", samples["ten_up"],
                  {"podman-compose": peer_samples["ten_up"]} if peer_samples else {},
                  target="<= 1000 ms"), 1000),
        check(Row("down, 10 independent services", "ms", samples["ten_down"],
                  {"podman-compose": peer_samples["ten_down"]} if peer_samples else {},
                  target="<= 1000 ms"), 1000),
        Row("up -d, 3-service healthy chain", "ms", samples["chain_up"],
            {"podman-compose": peer_samples["chain_up"]} if peer_samples else {},
            note="podman-compose 1.0.3 only orders (it ignores condition: service_healthy) and "
                 "podman runs no health checks without systemd"),
        Row("down, 3-service healthy chain", "ms", samples["chain_down"],
            {"podman-compose": peer_samples["chain_down"]} if peer_samples else {}),
        Row("up -d, 50 services", "ms", samples["fifty_up"]),
        Row("down, 50 services", "ms", samples["fifty_down"]),
    ]
    ctx.extra["memory"] = {str(n): m.to_json() for n, m in mem.items()}
    if conmon:
        ctx.extra["memory"]["podman_compose_10"] = conmon
    if 10 in mem:
        rows.append(check(Row("composerd RSS, 10 containers", "MiB",
                              Sample([mem[10].daemon_rss / MIB]), target="<= 60 MiB"), 60))
    peer_mem = {"conmon+catatonit": Sample([conmon["per_container_uss"]])} if conmon else {}
    for n in (10, 50):
        if n in mem:
            rows.append(check(Row(f"our USS per container ({n}), total/{n}", "MiB",
                                  Sample([mem[n].per_container / MIB]), peer_mem,
                                  target="<= 2 MiB"), 2))
            rows.append(Row(f"  of which shim+init per container ({n})", "MiB",
                            Sample([mem[n].per_shim_and_init / MIB]), peer_mem))
    return rows


def podman_compose(ctx: Context, files: dict[str, Path], runs: int) -> tuple[dict[str, Sample], dict[str, float]]:
    out = {k: Sample() for k in ("ten_up", "ten_down", "chain_up", "chain_down")}
    conmon: dict[str, float] = {}
    with ctx.peer("podman-compose"):
        pm = peers.Podman(ctx.workdir / "podman-compose")
        try:
            pm.setup(ctx.bundle.tarball)
            for name in ("ten", "chain"):
                for r in range(runs):
                    base = ["podman-compose", "-p", f"cmpbenchpc{name}", "-f", str(files[name])]
                    out[f"{name}_up"].values.append(peers.timed([*base, "up", "-d"], env=pm.env, timeout=300))
                    if r == 0 and name == "ten":
                        helpers = pm.conmon_pids() + _catatonits(pm)
                        conmon = memory.peer_uss(helpers)
                        conmon["per_container_uss"] = round(conmon["total_uss"] / 10, 3)
                    out[f"{name}_down"].values.append(peers.timed([*base, "down"], env=pm.env, timeout=300))
                ctx.log(f"(2) podman-compose {name}: up {_p50(out[f'{name}_up'])}, "
                        f"down {_p50(out[f'{name}_down'])}")
        except (peers.PeerError, OSError) as e:
            ctx.log(f"(2) podman-compose failed: {e}")
            for s in out.values():
                if not s.values:
                    s.note = f"failed: {e}"
        finally:
            pm.teardown()
    return out, conmon


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
    runs = ctx.runs(50, 20)
    size = (1 << 30) if not ctx.quick else (256 << 20)
    try:
        nums, raw = netload.network(runs, size, ctx.workdir / "network")
    except Exception as e:  # noqa: BLE001
        ctx.log(f"(5/6) network bench failed: {e}")
        return [Row("dns lookup from a container", "ms", Sample(note=f"failed: {e}"), target="p50 <= 1 ms")]
    ctx.extra["network_rows"] = [list(r) for r in raw]
    rows = []
    direct = Sample([nums["direct_mibs"]]) if "direct_mibs" in nums else Sample()
    for key, label in (("published_nat_mibs", "published port throughput (nft DNAT)"),
                       ("published_proxy_mibs", "published port throughput (proxy)")):
        if key in nums:
            r = Row(label, "MiB/s", Sample([nums[key]]), {"direct": direct},
                    target=">= 0.8x direct", higher_is_better=True)
            ratio = r.ratio("direct")
            r.met = None if ratio is None else ratio >= 0.8
            rows.append(r)
    if "dns_ms" in nums:
        rows.append(check(Row("dns lookup from a container", "ms", Sample([nums["dns_ms"]]),
                              target="p50 <= 1 ms"), 1))
    if "attach_ms" in nums:
        rows.append(Row("network attach (veth+addr+dns)", "ms", Sample([nums["attach_ms"]])))
    ctx.log("(5/6) network done")
    return rows


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
    ("composer run --rm svc true (bridge)", ("run", "--rm", "s1", "true"), 150),
)


EDITED_ROW = "composer ps, stack file just edited"


def cli(ctx: Context) -> list[Row]:
    """The CLI as a user feels it: a new `python -m composer.cli` process per command,
    composerd already running, a 10-service project up; runs interleaved so that the load
    of the host hits every row alike. `python -c pass` is the floor every row pays."""
    runs = ctx.runs(9, 3)
    file = stacks.write(ctx.workdir / "stacks", "cli", stacks.with_port(stacks.independent(10)))
    # the same stack under another name, rewritten before each of its runs: `ps` right after
    # an edit, when composer.stackcache misses and the full stack loader runs
    edited = file.with_name("compose-edited.yaml")
    project = f"cmpbench{str(time.time_ns())[-6:]}cli"
    bare = {"python3 -c pass (interpreter start)": (("-c", "pass"), None),
            "composer --help": (("--help",), 60.0), "composer version": (("version",), 60.0)}
    samples = {name: Sample() for name in [*bare, *(v[0] for v in CLI_VERBS), EDITED_ROW]}
    ours = ComposerCli(ctx.workdir / "cli-verbs")
    try:
        ours(file, project, "up", "-d")  # starts composerd: not counted
        ours(file, project, "ps")
        for _ in range(runs):
            for name, (argv, _) in bare.items():
                if argv[0] == "-c":
                    samples[name].values.append(peers.timed([sys.executable, *argv]))
                else:
                    samples[name].values.append(ours.bare(*argv))
            for name, argv, _ in CLI_VERBS:
                samples[name].values.append(ours(file, project, *argv))
            edited.write_text(file.read_text())
            samples[EDITED_ROW].values.append(ours(edited, project, "ps"))
        ctx.log("(cli) " + ", ".join(f"{n.removeprefix('composer ')} {_p50(s)}"
                                     for n, s in samples.items()))
    except (BenchError, peers.PeerError, OSError, subprocess.TimeoutExpired) as e:
        ctx.log(f"(cli) composer failed: {e}")
        for s in samples.values():
            if not s.values:
                s.note = f"failed: {e}"
    finally:
        ctx.cleanup += [f"composer cli verbs: leftover {x}" for x in ours.close()]
    targets = {**{n: t for n, (_, t) in bare.items()}, **{n: t for n, _, t in CLI_VERBS},
               EDITED_ROW: None}
    rows = []
    for name, s in samples.items():
        target = targets[name]
        row = Row(name, "ms", s, target=f"<= {target:g} ms" if target else "")
        rows.append(check(row, target) if target else row)
    return rows


SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "launch": launch, "stacks": stacks_and_memory, "network": network, "load": load,
    "cli": cli,
}
