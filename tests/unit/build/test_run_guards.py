"""The engine's RUN runner (LauncherRun) guards what it is given on its own, before any
container: an entitlement it does not know, and RUN --security=insecure without the
security.insecure entitlement (the builder checks that first; a caller that skips the
builder still cannot get a privileged step)."""
from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import InvalidArgument
from runtime.images.build.errors import BuildError
from runtime.images.build_adapters import LauncherRun


class NoLauncher:  # nor cgroup manager
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the launcher or cgroups were used ({name}) although the step "
                             "was refused")


def test_unknown_entitlement_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="build entitlement 'device' is not supported: "
                                              "use network.host or security.insecure"):
        LauncherRun(NoLauncher(), NoLauncher(), entitlements=("device",))  # type: ignore[arg-type]


@pytest.mark.parametrize("granted", [(), ("network.host",)])
async def test_insecure_step_without_the_entitlement_is_refused(granted: tuple[str, ...], tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = LauncherRun(NoLauncher(), NoLauncher(), entitlements=granted)  # type: ignore[arg-type]
    with pytest.raises(BuildError, match="RUN --security=insecure: this build was not granted "
                                         "the security.insecure entitlement"):
        await runner.run(lowerdirs=[], upper=str(tmp_path / "upper"), argv=["true"], env=[],
                         cwd="/", user="", on_output=lambda _line: None, security="insecure")
    assert list(tmp_path.iterdir()) == []  # not even its scratch dir
