"""The builder's three seams (runtime.images.build.interfaces) over the real engine parts.

    StoreLayers   LayerSink  over runtime.storage.layers.LayerStore
    StoreImages   ImageSink  over runtime.images.store.ImageStore
    LauncherRun   RunStep    a throw-away build container from runtime.process: overlay of the
                             step's layers with the step's upper dir, host network (as
                             `docker build`; `network="none"`: its own, with only lo; RUN
                             --network overrides it per command), default capabilities and
                             seccomp profile (RUN --security=insecure: as a privileged
                             container, neither of them, when the
                             build holds the security.insecure entitlement), a cgroup of
                             its own under the engine's parent (Docker's default device
                             allow-list unless insecure; killed and removed when the step
                             ends), output streamed from its log
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from secrets import token_hex

from runtime.api import BUILD_ENTITLEMENTS
from runtime.cgroups import Cgroup, CgroupManager
from runtime.errors import InvalidArgument, LaunchError, NotFound
from runtime.images.build.errors import BuildError
from runtime.images.build.interfaces import BuildImage, Progress, RunResult
from runtime.images.build.interfaces import ImageConfig as BuildConfig
from runtime.images.build.parser import RUN_MODES, SecretMount, SshMount
from runtime.images.build_leftovers import end_cgroup, step_prefix
from runtime.images.config import ImageConfig
from runtime.images.sshforward import AgentRelay
from runtime.images.store import ImageStore
from runtime.launchcfg import with_seccomp
from runtime.network.links import loopback_up
from runtime.process.config import (
    DEFAULT_NAMESPACES,
    LaunchConfig,
    MountPoint,
    Security,
    privileged_security,
)
from runtime.process.launcher import Launcher
from runtime.process.logread import read_log
from runtime.storage.layers import LayerStore
from runtime.tasks import settle

OUTPUT_TAIL = 200  # lines kept for the error message of a failed RUN

log = logging.getLogger(__name__)


class StoreLayers:
    def __init__(self, layers: LayerStore) -> None:
        self.layers = layers

    def add_dir(self, path: Path) -> str:
        return self.layers.add_dir(path).diff_id

    def path(self, layer_id: str) -> Path:
        return Path(self.layers.get(layer_id).path)

    def exists(self, layer_id: str) -> bool:
        return self.layers.exists(layer_id)


_SHARED = [f.name for f in fields(BuildConfig)]


def to_build_config(cfg: ImageConfig) -> BuildConfig:
    values = {name: getattr(cfg, name) for name in _SHARED}
    values["stop_signal"] = values["stop_signal"] or ""
    if values["shell"] is None:
        values.pop("shell")
    return BuildConfig(**values)


def from_build_config(cfg: BuildConfig) -> ImageConfig:
    values = {name: getattr(cfg, name) for name in _SHARED}
    values["stop_signal"] = values["stop_signal"] or None
    return ImageConfig(**values)


class StoreImages:
    def __init__(self, images: ImageStore) -> None:
        self.images = images

    def get(self, ref: str) -> BuildImage | None:
        try:
            img = self.images.get(ref)
        except NotFound:
            return None
        return BuildImage(tuple(img.layers), to_build_config(img.config))

    def put(self, image: BuildImage, tags: Sequence[str] = ()) -> str:
        return self.images.put(from_build_config(image.config), list(image.layers), tags).id


BUILD_NETWORKS = ("default", "host", "none")


def _drop_mountpoint(upper: Path, target: str) -> None:
    """A secret's (or ssh agent's) mountpoint is made in the overlay's upper dir (an empty file, and the
    folders to it when the image lacks them): remove it, and each folder left empty up the
    chain, so the secret leaves no trace in the layer (as BuildKit). A file the command
    itself wrote there (not empty) stays."""
    path = upper / target.lstrip("/")
    with contextlib.suppress(OSError):
        if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
            path.unlink()
    parent = path.parent
    while parent != upper and upper in parent.parents:
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        parent = parent.parent


class LauncherRun:
    """RUN in a container of our own runtime; its writes land in the step's upper dir.
    Compose's `build.network`, `build.shm_size` and `build.extra_hosts` shape every RUN.
    Each step's process joins a cgroup of its own made by `cgroups` (the engine's manager,
    so under the engine's parent, as its containers' cgroups) before it runs anything."""

    def __init__(self, launcher: Launcher, cgroups: CgroupManager, *, network: str = "default",
                 shm_size: int | None = None,
                 extra_hosts: Sequence[tuple[str, str]] = (),
                 secrets: Mapping[str, str] | None = None,
                 ssh: Mapping[str, str] | None = None,
                 entitlements: Collection[str] = ()) -> None:
        if network not in BUILD_NETWORKS:
            raise InvalidArgument(f"build network {network!r} is not supported: use default, host or none")
        unknown = sorted(set(entitlements) - set(BUILD_ENTITLEMENTS))
        if unknown:
            raise InvalidArgument(f"build entitlement {unknown[0]!r} is not supported: use "
                                  + " or ".join(BUILD_ENTITLEMENTS))
        self.launcher = launcher
        self.cgroups = cgroups
        self.network = network
        self.shm_size = shm_size
        self.extra_hosts = tuple(extra_hosts)
        self.secrets = dict(secrets or {})  # build secret id -> content (Compose build.secrets)
        self.ssh = dict(ssh or {})  # ssh agent id -> the agent's socket (Compose build.ssh)
        self.entitlements = frozenset(entitlements)  # BuildKit's: security.insecure, network.host

    def _secret_mounts(self, wanted: Sequence[SecretMount], scratch: Path) -> list[MountPoint]:
        """Each wanted secret as a file of its own mode and owner in the step's scratch dir
        (outside the layer), bind-mounted read-only at its target; a missing optional one is
        left out, a missing required one ends the build."""
        mounts = []
        folder = scratch / "secrets"
        for n, m in enumerate(wanted):
            content = self.secrets.get(m.id)
            if content is None:
                if m.required:
                    raise BuildError(f"RUN --mount=type=secret,id={m.id}: the secret is required "
                                     "but the build was given none of that id (list it in the "
                                     "service's build.secrets)")
                continue
            folder.mkdir(mode=0o700, exist_ok=True)
            path = folder / str(n)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, content.encode("utf-8", "surrogateescape"))
                os.fchown(fd, m.uid, m.gid)
                os.fchmod(fd, m.mode)
            finally:
                os.close(fd)
            mounts.append(MountPoint("bind", m.target, str(path), read_only=True))
        if mounts:
            os.chmod(folder, 0o755)  # a non-root RUN user reads its secret through it
        return mounts

    async def _ssh_relays(self, wanted: Sequence[SshMount], scratch: Path,
                          relays: list[AgentRelay]) -> list[MountPoint]:
        """Each wanted agent as a relay socket of the mount's mode and owner in the step's
        scratch dir, bind-mounted at its target; a missing optional one is left out, a
        missing required one ends the build. Started relays are appended to `relays`."""
        mounts = []
        for n, m in enumerate(wanted):
            agent = self.ssh.get(m.id)
            if agent is None:
                if m.required:
                    raise BuildError(f"RUN --mount=type=ssh,id={m.id}: the ssh agent is required "
                                     "but the build was given none of that id (list it in the "
                                     "service's build.ssh)")
                continue
            folder = scratch / "ssh"
            folder.mkdir(mode=0o755, exist_ok=True)
            relay = AgentRelay(folder / str(n), agent, mode=m.mode, uid=m.uid, gid=m.gid)
            await relay.start()
            relays.append(relay)
            mounts.append(MountPoint("bind", m.target, str(relay.path)))
        return mounts

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
        if security == "insecure" and "security.insecure" not in self.entitlements:
            raise BuildError("RUN --security=insecure: this build was not granted the "
                             "security.insecure entitlement (build.privileged: true)")
        if network not in RUN_MODES["network"] or security not in RUN_MODES["security"]:
            raise BuildError(f"RUN --network={network} --security={security}: unknown mode")
        scratch = Path(upper).parent / f"run-{token_hex(4)}"
        scratch.mkdir(parents=True)
        relays: list[AgentRelay] = []
        try:
            ssh_mounts = await self._ssh_relays(ssh, scratch, relays)
            if ssh_mounts and not any(e.startswith("SSH_AUTH_SOCK=") for e in env):
                env = [*env, f"SSH_AUTH_SOCK={ssh_mounts[0].target}"]  # as BuildKit's llb
            return await self._run(scratch, lowerdirs, upper, argv, env, cwd, user, on_output,
                                   secrets, ssh_mounts,
                                   self.network if network == "default" else network,
                                   security == "insecure")
        finally:
            for relay in relays:
                relay.stop()
            try:
                for relay in relays:
                    await relay.close()
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(scratch)

    async def _run(self, scratch: Path, lowerdirs: Sequence[str], upper: str,
                   argv: Sequence[str], env: Sequence[str], cwd: str, user: str,
                   on_output: Progress, wanted: Sequence[SecretMount],
                   ssh_mounts: Sequence[MountPoint] = (), network: str = "default",
                   privileged: bool = False) -> RunResult:
        (scratch / "work").mkdir()
        (scratch / "merged").mkdir()
        etc = {}
        for name in ("resolv.conf", "hosts"):
            src = Path("/etc") / name
            if src.exists():
                shutil.copyfile(src, scratch / name)
                etc[f"/etc/{name}"] = str(scratch / name)
        if self.extra_hosts:
            with open(scratch / "hosts", "a") as f:
                f.write("".join(f"{ip}\t{host}\n" for host, ip in self.extra_hosts))
            etc["/etc/hosts"] = str(scratch / "hosts")
        own_net = network == "none"
        cfg = LaunchConfig(
            id=f"{step_prefix(self.launcher)}{token_hex(6)}",  # also its cgroup's name
            argv=tuple(argv),
            state_dir=str(scratch),
            mergeddir=str(scratch / "merged"),
            lowerdirs=tuple(reversed(list(lowerdirs))),  # overlay wants the top layer first
            upperdir=upper,
            workdir=str(scratch / "work"),
            env=tuple(env),
            cwd=cwd or "/",
            user=user,
            hostname="buildkitsandbox",
            etc_files=etc,
            namespaces=tuple(n for n in DEFAULT_NAMESPACES if own_net or n != "net"),
            # BuildKit's sandbox: Docker's default capabilities and seccomp profile
            security=with_seccomp(Security()),
        )
        if self.shm_size:
            cfg = replace(cfg, shm_size=self.shm_size)
        if privileged:  # rw /sys, no masked paths, every capability, no seccomp nor AppArmor
            cfg = replace(cfg, privileged=True, security=privileged_security())
        secret_mounts = [*self._secret_mounts(wanted, scratch), *ssh_mounts]
        if secret_mounts:
            cfg = replace(cfg, mounts=(*cfg.mounts, *secret_mounts))
        tail: list[str] = []
        cg: Cgroup | None = None

        async def prepare(pid: int) -> None:
            """While the step's init waits in its new namespaces, before it runs anything: its
            own cgroup (Docker's default device allow-list first, so there is no moment
            without it; none for an insecure step, as for a privileged container), then lo
            up in its own network namespace."""
            nonlocal cg
            cg = self.cgroups.create(cfg.id)
            if not privileged:
                cg.restrict_devices()
            cg.add_pid(pid)
            if own_net:
                await loopback_up(pid)

        try:
            try:
                launched = await self.launcher.launch(cfg, prepare)
            except LaunchError as e:
                on_output(e.message)
                return RunResult(e.exit_code, e.message)
            finished = False

            async def follow() -> None:
                async for entry in read_log(cfg.log_file, follow=True, stop=lambda: finished,
                                            poll=0.05):
                    line = entry.data.rstrip("\n")
                    on_output(line)
                    tail.append(line)
                    del tail[:-OUTPUT_TAIL]

            reader = asyncio.create_task(follow())
            try:
                status = await self.launcher.wait(launched)
            except BaseException:
                self.launcher.kill(launched)
                await settle(asyncio.shield(self.launcher.wait(launched)))
                raise
            finally:
                finished = True
                await settle(asyncio.wait_for(reader, 5))
            return RunResult(status.code, "\n".join(tail))
        finally:
            for m in secret_mounts:
                _drop_mountpoint(Path(upper), m.target)
            if cg is not None:  # also on failure and cancellation: what the step left, killed
                ended = asyncio.ensure_future(asyncio.to_thread(end_cgroup, cg))
                await settle(asyncio.shield(ended))
