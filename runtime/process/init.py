"""The container's init: the launch sequence as one ordered function (youki's
container_init_process.rs, runc's standard_init_linux.go). Runs in a child forked by the
launch child (runtime.process.spawn), already pid 1 of the new pid namespace; never returns
(execve or os._exit).

    enter_namespaces   join given namespaces, unshare uts/ipc/net/mnt, lo up  (before "ready")
    --- ready / prepare(pid) by the engine / go ---
    setup_container    cgroup ns, rprivate, rootfs, /proc /sys /dev, mounts, devices, pivot_root,
                       sysctls, masked + read-only paths, ro rootfs, hostname, rlimits, user
    security.apply     AppArmor exec profile, [seccomp if no no_new_privs], bounding set,
                       groups/gid/uid (keepcaps), capset, no_new_privs, [seccomp if
                       no_new_privs] -- the same function the exec path uses
    exec_command       close fds, execve with PATH search in the container's env

Each step is on the `Syscalls` seam, so tests/unit/process checks the order without root.
"""
from __future__ import annotations

import errno
import os
import signal
from typing import Protocol

from runtime.errors import LaunchError
from runtime.process import rootfs, security
from runtime.process.config import CAPS, DEFAULT_PATH, LaunchConfig
from runtime.process.security import Identity
from runtime.process.syscalls import CLONE_NEWCGROUP, MS_PRIVATE, MS_REC, NS_FLAGS, Syscalls
from runtime.process.users import ExecUser, resolve_user

# Joining order for setns (runc nsenter): user first (it owns the others), mnt last so the
# /proc/<pid>/ns paths, opened up front, are not affected; pid applies to children only.
JOIN_ORDER = ("user", "ipc", "uts", "net", "pid", "cgroup", "mnt")
# Created by the init itself before "ready"; cgroup is created after "go" (so its root is
# the container's cgroup, placed by the engine during the pause); pid by the launch child.
EARLY_UNSHARE = ("uts", "ipc", "net", "mnt")


class Channel(Protocol):
    def send(self, msg: dict[str, object]) -> None: ...
    def recv(self) -> dict[str, object] | None: ...


class ExecFailed(LaunchError):
    """execve failed: 127 not found, 126 not executable (Docker's codes)."""


def enter_namespaces(cfg: LaunchConfig, sc: Syscalls) -> None:
    """Join the given namespaces (all paths opened first), then create the early ones."""
    fds = [(ns, sc.open_ns(cfg.join_namespaces[ns])) for ns in JOIN_ORDER
           if ns in cfg.join_namespaces and ns != "pid"]  # pid: by the launch child
    for ns, fd in fds:
        sc.setns(fd, NS_FLAGS[ns])
        sc.close(fd)
    flags = 0
    for ns in EARLY_UNSHARE:
        if ns in cfg.namespaces and ns not in cfg.join_namespaces:
            flags |= NS_FLAGS[ns]
    if flags:
        sc.unshare(flags)
    if flags & NS_FLAGS["net"]:
        # a fresh network namespace has only lo, down: up here, as runc and crun do, so the
        # engine has no netns trip for it (network_mode none); the monitor says it does this
        # (LOOPBACK_FEATURE) so an engine talking to an older monitor still does it itself
        sc.loopback_up()


def read_last_cap(sc: Syscalls) -> int:
    raw = sc.read_file("/proc/sys/kernel/cap_last_cap")
    return int(raw) if raw and raw.strip().isdigit() else max(CAPS.values())


def setup_container(cfg: LaunchConfig, sc: Syscalls, idmapped: tuple[int, ...] = ()) -> Identity:
    """Everything between "go" and the identity switch; returns who to become.
    `idmapped`: with a user namespace, idmapped clones of the lowerdirs (made by the launch
    child)."""
    # 1. Own cgroup namespace now that the engine has put us in our cgroup.
    if "cgroup" in cfg.namespaces and "cgroup" not in cfg.join_namespaces:
        sc.unshare(CLONE_NEWCGROUP)
    last_cap = read_last_cap(sc)  # from the host's /proc, before it goes away
    # 2. Nothing we mount may propagate back to the host.
    sc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    # 3. The root file system, then the kernel file systems and /dev inside it. In a user
    #    namespace each lowerdir is first covered by its idmapped clone (in our mount
    #    namespace only), so the image's root-owned files are root's inside.
    for fd, lower in zip(idmapped, cfg.lowerdirs, strict=False):
        sc.move_mount(fd, lower)
        sc.close(fd)
    rootfs.mount_rootfs(cfg, sc)
    rootfs.mount_proc_sys(cfg, sc)
    rootfs.mount_dev(cfg, sc)
    # 4. Volumes, binds, tmpfs; then hosts/hostname/resolv.conf over the image's.
    rootfs.mount_user_mounts(cfg, sc)
    rootfs.make_devices(cfg, sc)  # the service's devices:, over the mounts (as runc)
    if cfg.cwd and cfg.cwd != "/":  # Docker creates a missing working_dir
        sc.makedirs(rootfs.secure_join(cfg.mergeddir, cfg.cwd, sc))
    # 5. Switch root: pivot_root (not chroot: the old root must be unreachable).
    rootfs.pivot(cfg, sc)
    # 6. Sysctls before /proc/sys turns read-only.
    for key, value in sorted(cfg.sysctls.items()):
        sc.write_file("/proc/sys/" + key.replace(".", "/"), value)
    if not cfg.privileged:
        rootfs.mask_paths(sc)
    if cfg.read_only:
        rootfs.remount_root_readonly(sc)
    # 7. Names, limits.
    if cfg.hostname:
        sc.sethostname(cfg.hostname)
    if cfg.domainname:
        sc.setdomainname(cfg.domainname)
    for lim in cfg.rlimits:
        sc.setrlimit(lim.name, lim.soft, lim.hard)
    # 8. The user, from the image's own /etc files; the confinement comes with the config
    #    (capabilities, no_new_privs, seccomp filter, AppArmor profile: security.apply).
    user = resolve_user(cfg.user, cfg.group_add, sc.read_file("/etc/passwd"),
                        sc.read_file("/etc/group"))
    return Identity(user, cfg.security, last_cap)


def build_env(env: tuple[str, ...] | list[str], user: ExecUser, hostname: str = "") -> list[str]:
    out = list(env)
    keys = {e.split("=", 1)[0] for e in out}
    if "PATH" not in keys:
        out.insert(0, f"PATH={DEFAULT_PATH}")
    if hostname and "HOSTNAME" not in keys:
        out.append(f"HOSTNAME={hostname}")
    if "HOME" not in keys:
        out.append(f"HOME={user.home}")
    return out


def exec_command(argv: list[str], env: list[str], sc: Syscalls, keep_fds: tuple[int, ...]) -> None:
    """execve, searching PATH from the container's env. Raises ExecFailed (Docker's messages)."""
    sc.close_fds(keep_fds)
    name = argv[0]
    if "/" in name:
        candidates = [name]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    denied: OSError | None = None
    for cand in candidates:
        try:
            sc.execve(cand, argv, env)
            return  # only a fake returns
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR):
                denied = denied or e
            elif e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise ExecFailed(f'exec: "{name}": {e.strerror}', exit_code=126) from None
    if denied is not None:
        raise ExecFailed(f'exec: "{name}": permission denied', exit_code=126)
    if "/" in name:
        raise ExecFailed(f'exec: "{name}": stat {name}: no such file or directory',
                         exit_code=127)
    raise ExecFailed(f'exec: "{name}": executable file not found in $PATH', exit_code=127)


def reap_forever(child: int) -> int:
    """`init: true` pid 1: forward signals to the command, reap every zombie, exit with its code."""
    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                 signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for s in forwarded:
        signal.signal(s, forward)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child:
            return exit_code_of(status)


def exit_code_of(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255


def _fail(chan: Channel | None, err: BaseException) -> int:
    code = err.exit_code if isinstance(err, LaunchError) else 125
    if isinstance(err, LaunchError):
        msg = str(err)
    elif isinstance(err, OSError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        msg = f"container setup failed: {err.strerror[0].lower()}{err.strerror[1:]}{where}"
    else:
        msg = f"container setup failed: {type(err).__name__}: {err}"
    try:
        os.write(2, (msg + "\n").encode())
    except OSError:
        pass
    if chan is not None:
        try:
            chan.send({"error": msg, "exit_code": code})
        except OSError:
            pass
    return code


def run_init(cfg: LaunchConfig, sc: Syscalls, chan: Channel, conn_fd: int,
             idmapped: tuple[int, ...] = (), monitor_pid: int = 0) -> int:
    """The whole sequence. Returns an exit code only on failure (or from the fake/reaper).
    `monitor_pid`: the monitor's host pid (our parent is the launch child, or its stage-1
    child with a user namespace; both exit as we start and the monitor adopts us)."""
    try:
        enter_namespaces(cfg, sc)
        chan.send({"ready": True, "pid": host_pid(), "monitor_pid": monitor_pid or host_ppid()})
        msg = chan.recv()
        if not msg or not msg.get("go"):
            return 125  # the engine gave up (prepare failed): leave quietly
        ident = setup_container(cfg, sc, idmapped)
        env = build_env(cfg.env, ident.user, cfg.hostname)
        if cfg.init:
            return _run_with_reaper(cfg, ident, env, sc, chan, conn_fd)
        security.apply(ident, sc)
        sc.chdir(cfg.cwd or "/")
        exec_command(list(cfg.argv), env, sc, keep_fds=(conn_fd,))
        return 0
    except BaseException as e:  # noqa: BLE001 - everything must reach the engine
        return _fail(chan, e)


def _run_with_reaper(cfg: LaunchConfig, ident: Identity, env: list[str], sc: Syscalls,
                     chan: Channel, conn_fd: int) -> int:
    security.apply(ident, sc)
    sc.chdir(cfg.cwd or "/")
    child = os.fork()
    if child == 0:
        try:
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(s, signal.SIG_DFL)
            exec_command(list(cfg.argv), env, sc, keep_fds=(conn_fd,))
            code = 0
        except BaseException as e:  # noqa: BLE001
            code = _fail(chan, e)
        os._exit(code)
    os.close(conn_fd)  # only the command's copy remains: EOF at its execve
    security.confine_self(ident, sc)  # the reaper never execs: AppArmor takes it now
    return reap_forever(child)


def host_pid() -> int:
    """Our pid as the host sees it: /proc is still the host's before setup_container."""
    try:
        return int(os.readlink("/proc/self"))
    except (OSError, ValueError):
        return os.getpid()


def host_ppid() -> int:
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError):
        return os.getppid()
