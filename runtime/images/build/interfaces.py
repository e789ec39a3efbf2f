"""The seam between the builder and the rest of the engine: three small protocols.

The builder never touches the layer store, the image store or the process launcher
directly; it is handed objects with these shapes. Tests use fakes (a directory-copy layer
sink, a dict image sink, a chroot runner); the engine plugs in adapters over
`runtime.storage.layers.LayerStore`, `runtime.images.store.ImageStore` and `runtime.process`.

Directory format ("overlay format") used on both sides of `LayerSink`:
  * a layer is a plain directory tree, usable as an overlayfs lowerdir;
  * a deleted path is a character device 0/0 (an overlay whiteout);
  * a directory that hides everything below it carries `trusted.overlay.opaque=y`.
Layer lists are always ordered **bottom first** (base layer at index 0), as in an image
manifest; a runner that mounts overlayfs reverses them for `lowerdir=` (top first).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from runtime.types import Healthcheck

if TYPE_CHECKING:
    from runtime.images.build.parser import SecretMount, SshMount

Progress = Callable[[str], None]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class ImageConfig:
    """What a build changes besides files. Same field names as the image store's ImageConfig,
    so an adapter converts field by field (or with runtime.serde to_dict/from_dict)."""

    env: tuple[str, ...] = ()  # "KEY=value", Docker order
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", sorted
    volumes: tuple[str, ...] = ()  # sorted
    healthcheck: Healthcheck | None = None
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            k, _, v = item.partition("=")
            out[k] = v
        return out


@dataclass(frozen=True)
class BuildImage:
    """An image as the builder sees it: a layer chain (bottom first) and a config."""

    layers: tuple[str, ...]
    config: ImageConfig


@runtime_checkable
class LayerSink(Protocol):
    """Turns directories into layers and gives their directories back."""

    def add_dir(self, path: Path) -> str:
        """Make a layer from `path` (overlay format, see module doc) and return its id.

        Used for a step's diff (a RUN's upper dir, the files COPY wrote) and for a whole
        base rootfs. The sink copies or moves the content; the builder deletes `path`
        afterwards if it still exists. Must keep owners, modes, mtimes, xattrs, devices."""
        ...

    def path(self, layer_id: str) -> Path:
        """The layer's directory (read-only use: overlay lowerdir, reading /etc/passwd)."""
        ...

    def exists(self, layer_id: str) -> bool:
        """False when the layer was removed: a cache entry naming it is then stale."""
        ...


@runtime_checkable
class ImageSink(Protocol):
    """Stores images; looked up by tag ("debian:bookworm-slim") or by id."""

    def get(self, ref: str) -> BuildImage | None:
        """The image named `ref`, or None when the store does not have it."""
        ...

    def put(self, image: BuildImage, tags: Sequence[str] = ()) -> str:
        """Store `image`, point each tag at it, return the image id."""
        ...


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    output: str  # stdout+stderr interleaved (at least the tail, for error messages)


@runtime_checkable
class RunStep(Protocol):
    """Runs one RUN instruction in a throw-away build container."""

    async def run(
        self,
        *,
        lowerdirs: Sequence[str],
        upper: str,
        argv: Sequence[str],
        env: Sequence[str],
        cwd: str,
        user: str,
        on_output: Progress,
        secrets: Sequence[SecretMount] = (),
        ssh: Sequence[SshMount] = (),
        network: str = "default",
        security: str = "sandbox",
    ) -> RunResult:
        """Run `argv` (already including the image's SHELL for the shell form) as `user`
        ("" = root; "name", "uid", "name:group", "uid:gid" resolved in the image) in `cwd`
        with exactly `env` ("K=v"), on a root filesystem made of `lowerdirs` (bottom first)
        with every change written into the empty directory `upper` in overlay format.
        Stream output lines to `on_output` as they come. Network: the host's (like
        `docker build` default). `secrets`: the build secrets mounted read-only for this
        command only (RUN --mount=type=secret), never left in `upper`. `ssh`: the build's
        ssh agents as sockets for this command only (RUN --mount=type=ssh), never left in
        `upper` either. `network` (RUN --network): "default" = the build's network, "none"
        or "host". `security` (RUN --security): "sandbox" (default capabilities) or
        "insecure" (as a privileged container; the builder has checked the entitlement).
        Must leave no mount,
        process or cgroup behind, also when the command fails or the coroutine is cancelled."""
        ...
