"""BuildKit's entitlements on the real engine: with security.insecure (Compose's
build.privileged) a RUN --security=insecure step runs as a privileged container (every
capability, no seccomp filter, /sys writable, mount(2) allowed) while a plain RUN of the
same build keeps the default capabilities and seccomp filter; without the entitlement the build stops before any step runs, with
one line naming the fix. RUN --network=none/host pick the step's network."""
from __future__ import annotations

from pathlib import Path

from runtime.api import BuildRequest
from runtime.engine import Engine
from runtime.process.config import CAPS, DEFAULT_CAPS, cap_mask
from tests.integration.engine.test_build_keys import _build, _read

PROBE = """\
grep CapEff /proc/self/status | cut -f2 > /{name}-caps; \\
    grep Seccomp: /proc/self/status | cut -f2 > /{name}-seccomp; \\
    grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1 > /{name}-sys; \\
    mkdir -p /probe; if mount -t tmpfs probe /probe 2>/dev/null; then umount /probe; \\
    echo mounted; \\
    else echo refused; fi > /{name}-mount
"""
DOCKERFILE = f"""\
FROM busybox
RUN --security=insecure {PROBE.format(name="insecure")}
RUN {PROBE.format(name="sandbox")}
RUN --network=none ls /sys/class/net > /nets-none
RUN --network=host ls /sys/class/net > /nets-host
"""


def _mask(caps: tuple[str, ...]) -> str:
    """CapEff of a process with `caps`, within what this process may hand on (a sandbox
    running the tests may lack some in its bounding set)."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    bounding = next(int(line.split()[1], 16) for line in Path("/proc/self/status").read_text()
                    .splitlines() if line.startswith("CapBnd:"))
    return f"{cap_mask(caps, last) & bounding:016x}"


async def test_insecure_run_is_privileged_only_with_the_entitlement(engine: Engine, tmp_path: Path) -> None:
    denied = BuildRequest(context=str(tmp_path), dockerfile_inline=DOCKERFILE, tag="insecure:no",
                          entitlements=("network.host",))
    errors = [s.error async for s in engine.build_image(denied) if s.error]
    assert errors == [
        "Dockerfile (inline):2: RUN --security=insecure needs the security.insecure entitlement, "
        "which this build was not granted: set build.privileged: true (or build.entitlements: "
        "[security.insecure]) on the service"]
    assert not (Path(engine.paths.root) / "build" / "tmp").exists() or not any(
        (Path(engine.paths.root) / "build" / "tmp").iterdir())  # no step was started

    req = BuildRequest(context=str(tmp_path), dockerfile_inline=DOCKERFILE, tag="insecure:yes",
                       entitlements=("security.insecure", "network.host"))
    await _build(engine, req)
    out = (await _read(engine, "insecure:yes", "probe", *(
        f"/{name}-{what}" for name in ("insecure", "sandbox") for what in ("caps", "seccomp", "sys", "mount")),
        "/nets-none", "/nets-host")).splitlines()
    # insecure: every capability, no seccomp filter, /sys writable, mount(2) works
    assert out[0:4] == [_mask(tuple(CAPS)), "0", "rw", "mounted"]
    # sandbox (the default): Docker's default capabilities and seccomp filter (mode 2)
    assert out[4:8] == [_mask(DEFAULT_CAPS), "2", "ro", "refused"]
    assert out[8] == "lo"  # RUN --network=none: its own namespace, only lo
    assert "lo" in out[9:] and len(out[9:]) > 1  # RUN --network=host: the host's interfaces
