"""Benchmark: the seccomp filter -- program size, path length, compile time, and what it costs
per syscall on the real kernel.

    python3 bench/seccomp.py [calls]     (root; gcc for the prober; busybox rootfs in a temp dir)

Prints, for Docker's default profile, the BPF program size and the instructions executed per
syscall (on the test BPF machine) per architecture and capability set; the compile time; then
runs `sysprobe loop` in containers without a filter, under the default profile, and under a
300-instruction linear filter for comparison, and prints ns per call (median of 7 runs,
interleaved). Two loops: getppid(2), which the kernel's seccomp cache (Linux >= 5.11) answers
without running a filter that allows it for any argument, and personality(0xffffffff) (a
query), whose verdict depends on its argument, so the filter runs on every call.
"""
from __future__ import annotations

import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.images.busybox import populate_rootfs  # noqa: E402
from runtime.process import seccomp, sysnr  # noqa: E402
from runtime.process.config import CAPS, DEFAULT_CAPS, LaunchConfig, Security  # noqa: E402
from runtime.process.launcher import Launcher  # noqa: E402
from tests.integration.process.sysprobe import build  # noqa: E402
from tests.unit.process import bpfvm  # noqa: E402

CAP_SETS = {"none": (), "default": DEFAULT_CAPS, "+SYS_ADMIN": (*DEFAULT_CAPS, "SYS_ADMIN"),
            "all": tuple(CAPS)}


def sizes() -> None:
    print(f"{'arch':8} {'caps':11} {'insns':>5} {'path avg':>8} {'path max':>8}")
    for arch in ("x86_64", "aarch64"):
        for label, caps in CAP_SETS.items():
            prog = seccomp.decode(seccomp.compile_filter("default", caps, arch=arch).program)
            steps = [bpfvm.run(prog, nr, sysnr.AUDIT_ARCH[arch], (1, 1, 0)).steps
                     for nr in sysnr.table(arch).values()]
            print(f"{arch:8} {label:11} {len(prog):5} {statistics.mean(steps):8.1f} "
                  f"{max(steps):8}")
    t0 = time.perf_counter()
    profile = seccomp.default_profile()
    plan = seccomp.decide(profile, DEFAULT_CAPS)
    seccomp.encode(seccomp.assemble(plan))
    print(f"compile (decide + assemble, uncached): {(time.perf_counter() - t0) * 1000:.2f} ms")


def linear_filter(n: int) -> str:
    """For comparison: `n` jeq's in a row (no search tree), then a load of args[0] (so the
    kernel cannot cache the verdict), then ALLOW."""
    prog = [seccomp.Insn(seccomp.BPF_LD_W_ABS, 0, 0, seccomp.OFF_NR)]
    prog += [seccomp.Insn(seccomp.BPF_JMP_JEQ_K, 0, 0, 100000 + i) for i in range(n)]
    prog += [seccomp.Insn(seccomp.BPF_LD_W_ABS, 0, 0, seccomp.OFF_ARGS),
             seccomp.Insn(seccomp.BPF_RET_K, 0, 0, seccomp.ALLOW)]
    return base64.b64encode(seccomp.encode(prog)).decode()


async def cost(calls: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cmpbench"))
    rootfs = populate_rootfs(tmp / "rootfs")
    build(rootfs / "bin" / "sysprobe")
    launcher = Launcher(str(tmp / "monitor.sock"))
    await launcher.start_server()
    default = seccomp.compile_filter("default", DEFAULT_CAPS)
    cases = {"no filter": Security(),
             f"default profile ({default.instructions} insns)":
                 Security(seccomp=base64.b64encode(default.program).decode(),
                          no_new_privs=True),
             "linear, 300 jeq": Security(seccomp=linear_filter(300), no_new_privs=True)}
    loops = {"getppid": (sysnr.number("getppid"),),
             "personality(-1)": (sysnr.number("personality"), 0xFFFFFFFF)}
    try:
        n = 0
        runs: dict[tuple[str, str], list[float]] = {}
        for _ in range(7):
            for loop, call in loops.items():
                for label, sec in cases.items():
                    n += 1
                    d = tmp / f"c{n}"
                    for sub in ("upper", "work", "merged", "state"):
                        (d / sub).mkdir(parents=True)
                    cfg = LaunchConfig(id=f"s{n}", argv=("sysprobe", "loop", str(calls),
                                                         *map(str, call)),
                                       state_dir=str(d / "state"), mergeddir=str(d / "merged"),
                                       lowerdirs=(str(rootfs),), upperdir=str(d / "upper"),
                                       workdir=str(d / "work"), security=sec)
                    launched = await launcher.launch(cfg)
                    status = await launcher.wait(launched)
                    assert status.code == 0, status
                    line = Path(cfg.log_file).read_text()
                    runs.setdefault((loop, label), []).append(
                        float(line.split('"ns ')[1].split("\\n")[0]))
        print(f"\n{'loop':16} {'filter':32} {'ns/call':>8}  (median of 7 x {calls} calls)")
        for loop in loops:
            base = statistics.median(runs[(loop, "no filter")])
            for label in cases:
                med = statistics.median(runs[(loop, label)])
                print(f"{loop:16} {label:32} {med:8.1f}  ({med - base:+.1f})")
    finally:
        await launcher.close()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sizes()
    asyncio.run(cost(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000))
