"""The production RUN runner (runtime.images.build_adapters.LauncherRun) on its own: a RUN
step is a container of our runtime over the image's layers, its writes land in the step's
upper dir, its output and exit code come back, and a cancelled build leaves nothing."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from runtime.engine import Engine
from runtime.images.build_adapters import LauncherRun, StoreImages, StoreLayers


def busybox_layers(engine: Engine) -> list[str]:
    image = StoreImages(engine.images).get("busybox:latest")
    assert image is not None
    layers = StoreLayers(engine.images.layers)
    return [str(layers.path(layer)) for layer in image.layers]


async def run(engine: Engine, upper: Path, *argv: str, user: str = "") -> tuple[int, str, list[str]]:
    lines: list[str] = []
    res = await LauncherRun(engine.launcher, engine.cgroups, network="none").run(
        lowerdirs=busybox_layers(engine), upper=str(upper), argv=argv,
        env=["PATH=/bin:/usr/bin", "GREETING=hi"], cwd="/", user=user, on_output=lines.append)
    return res.exit_code, res.output, lines


async def test_a_run_step_writes_its_upper_dir_and_reports_code_and_output(
        engine: Engine, tmp_path: Path) -> None:
    upper = tmp_path / "step" / "upper"
    upper.mkdir(parents=True)
    code, output, lines = await run(
        engine, upper, "sh", "-c",
        'echo "$GREETING from $(hostname)"; id -u > /made; echo oops >&2; exit 3')
    assert code == 3
    assert "hi from buildkitsandbox" in lines and "oops" in lines  # live, line by line
    assert "hi from buildkitsandbox" in output and "oops" in output  # the tail, for the error
    assert (upper / "made").read_text() == "0\n"
    assert sorted(p.name for p in upper.parent.iterdir()) == ["upper"]  # its scratch is gone
    code, _, lines = await run(engine, upper, "id", "-u", user="65534")
    assert (code, lines) == (0, ["65534"])


async def test_a_cancelled_run_step_is_killed_and_leaves_nothing(
        engine: Engine, tmp_path: Path) -> None:
    upper = tmp_path / "step" / "upper"
    upper.mkdir(parents=True)
    task = asyncio.create_task(run(engine, upper, "sh", "-c", "touch /started; sleep 600"))
    deadline = time.monotonic() + 30
    while not (upper / "started").exists():
        assert time.monotonic() < deadline, "the RUN step did not start"
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert time.monotonic() - t0 < 10  # killed, not waited for
    assert sorted(p.name for p in upper.parent.iterdir()) == ["upper"]
    with open("/proc/self/mounts") as f:
        assert not [line for line in f if str(tmp_path) in line]
