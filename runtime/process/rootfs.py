"""The container's file system, built inside its own mount namespace (runc: rootfs_linux.go).

Every mount here happens after `mount --make-rprivate /` in the container's mount namespace,
so the host never sees them and they vanish with the namespace when the container dies.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat

from runtime.process.config import MASKED_PATHS, READONLY_PATHS, LaunchConfig, MountPoint
from runtime.process.syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    PROPAGATION,
    Syscalls,
)

# (name, major, minor): the devices every container gets (runc's DefaultSimpleDevices + tty).
DEVICES: tuple[tuple[str, int, int], ...] = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
    ("tty", 5, 0),
)
DEV_LINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx"), ("/proc/kcore", "core"),
)


def secure_join(root: str, path: str, sc: Syscalls) -> str:
    """`root`/`path` with symlinks resolved as if `root` were `/`: a link can't escape root."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        cand = posixpath.join(root, *done, part)
        link = sc.readlink(cand)
        if link is None:
            done.append(part)
            continue
        hops += 1
        if hops > 40:
            raise OSError(40, f"too many levels of symbolic links under {root}: {path}")
        if link.startswith("/"):
            done = []
        parts = [p for p in link.split("/") if p and p != "."] + parts
    return posixpath.join(root, *done) if done else root


MOUNT_DATA_MAX = os.sysconf("SC_PAGESIZE") - 1  # mount(2) copies one page of options


def _short_overlay_options(cfg: LaunchConfig) -> str | None:
    """The overlay options with the short `l/<n>` links that runtime.storage.rootfs.prepare
    makes beside upper/ and work/, relative to that dir (None when they are not there).

    Used for every container, not only when the full paths pass one page: overlayfs shows
    the option strings as they were given, so /proc/self/mountinfo inside the container
    shows `lowerdir=l/0:l/1,upperdir=upper,workdir=work` and not the state root's layout
    (Docker shows its full /var/lib/docker/overlay2 paths; docs/security.md)."""
    base = os.path.dirname(cfg.upperdir.rstrip("/"))
    links = os.path.join(base, "l")
    short = [f"l/{i}" for i in range(len(cfg.lowerdirs))]
    if not os.path.isdir(links) or not all(
            os.path.realpath(os.path.join(base, s)) == os.path.realpath(d)
            for s, d in zip(short, cfg.lowerdirs, strict=True)):
        return None
    os.chdir(base)  # overlay resolves relative paths against the mounting process's cwd
    return f"lowerdir={':'.join(short)},upperdir={os.path.basename(cfg.upperdir.rstrip('/'))}," \
           f"workdir={os.path.basename(cfg.workdir.rstrip('/'))}"


def mount_rootfs(cfg: LaunchConfig, sc: Syscalls) -> None:
    """Overlay of lowerdirs + upperdir at mergeddir, or a bind of a plain directory rootfs."""
    root = cfg.mergeddir
    if cfg.upperdir:
        opts = _short_overlay_options(cfg) or \
            f"lowerdir={':'.join(cfg.lowerdirs)},upperdir={cfg.upperdir},workdir={cfg.workdir}"
        if len(opts) >= MOUNT_DATA_MAX:
            raise OSError(7, f"too many image layers ({len(cfg.lowerdirs)}) for one overlay "
                             "mount: squash the image")
        sc.mount("overlay", root, "overlay", 0, opts)
    elif len(cfg.lowerdirs) == 1:
        sc.mount(cfg.lowerdirs[0], root, None, MS_BIND | MS_REC)
    else:  # several read-only layers, no upper: a read-only overlay
        sc.mount("overlay", root, "overlay", 0, f"lowerdir={':'.join(cfg.lowerdirs)}")


def mount_proc_sys(cfg: LaunchConfig, sc: Syscalls) -> None:
    root = cfg.mergeddir
    target = secure_join(root, "/proc", sc)
    sc.makedirs(target)
    sc.mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    target = secure_join(root, "/sys", sc)
    sc.makedirs(target)
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if cfg.privileged else MS_RDONLY)
    sc.mount("sysfs", target, "sysfs", flags)


def mount_dev(cfg: LaunchConfig, sc: Syscalls) -> None:
    dev = secure_join(cfg.mergeddir, "/dev", sc)
    sc.makedirs(dev)
    sc.mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        if "user" in cfg.namespaces:  # no mknod in a user namespace: bind the host's (runc)
            sc.touch(f"{dev}/{name}")
            sc.mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
            continue
        sc.mknod(f"{dev}/{name}", stat.S_IFCHR | 0o666, major, minor)
        sc.chmod(f"{dev}/{name}", 0o666)  # mknod honours the umask
    for target, name in DEV_LINKS:
        sc.symlink(target, f"{dev}/{name}")
    sc.makedirs(f"{dev}/pts")
    sc.mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    if cfg.tty:  # our stdin is the pty's slave, from the host's devpts: /dev/console names
        # it inside (ttyname(3) finds it by its inode), as Docker's does. The path is taken
        # in our copy of the host's mounts: a bind from the fd itself would cross namespaces.
        sc.touch(f"{dev}/console")
        sc.mount(os.ttyname(0), f"{dev}/console", None, MS_BIND)
    sc.makedirs(f"{dev}/shm")
    if cfg.shm_source:  # the /dev/shm of the IPC namespace joined (a shareable one, the host's)
        sc.mount(cfg.shm_source, f"{dev}/shm", None, MS_BIND | MS_REC)
    else:
        sc.mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 f"mode=1777,size={cfg.shm_size}")
    sc.makedirs(f"{dev}/mqueue")
    sc.mount("mqueue", f"{dev}/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def make_devices(cfg: LaunchConfig, sc: Syscalls) -> None:
    """The service's own device nodes (`devices:`), after every mount as runc does (so a node
    under /dev/shm or a volume lands in it): the host node's type, numbers, mode and owner,
    replacing a file of the image at that path. In a user namespace, a bind of the host node."""
    for d in cfg.devices:
        target = secure_join(cfg.mergeddir, d.path, sc)
        if sc.is_dir(target):
            raise OSError(errno.EISDIR, f"device {d.path}: the container has a directory there")
        sc.makedirs(posixpath.dirname(target))
        if "user" in cfg.namespaces:
            if not sc.exists(target):
                sc.touch(target)
            sc.mount(d.host_path, target, None, MS_BIND)
            continue
        sc.unlink(target)
        kind = stat.S_IFBLK if d.type == "b" else stat.S_IFCHR
        sc.mknod(target, kind | d.mode, d.major, d.minor)
        sc.chmod(target, d.mode)  # mknod honours the umask
        sc.chown(target, d.uid, d.gid)


def _make_target(target: str, source_is_dir: bool, sc: Syscalls) -> None:
    if source_is_dir:
        sc.makedirs(target)
    else:
        sc.makedirs(posixpath.dirname(target))
        if not sc.is_dir(target):
            sc.touch(target)


def mount_user_mounts(cfg: LaunchConfig, sc: Syscalls) -> None:
    """Volumes, binds and tmpfs, parents before children."""
    for m in sorted(cfg.mounts, key=lambda m: len([p for p in m.target.split("/") if p])):
        mount_one(cfg.mergeddir, m, sc)
    for target, source in sorted(cfg.etc_files.items()):
        mount_one(cfg.mergeddir, MountPoint("bind", target, source), sc)


def mount_one(root: str, m: MountPoint, sc: Syscalls) -> None:
    target = secure_join(root, m.target, sc)
    if m.type == "overlay":  # only lowerdirs: read-only by nature
        sc.makedirs(target)
        sc.mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV | MS_RDONLY, ",".join(m.options))
        return
    if m.type == "tmpfs":
        sc.makedirs(target)
        flags = MS_NOSUID | MS_NODEV | (MS_RDONLY if m.read_only else 0)
        sc.mount("tmpfs", target, "tmpfs", flags, ",".join(m.options) or None)
        return
    _make_target(target, sc.is_dir(m.source), sc)
    sc.mount(m.source, target, None, MS_BIND | MS_REC)
    if m.read_only:  # a bind's flags change only on remount
        sc.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    prop = PROPAGATION.get(m.propagation or "rprivate", MS_PRIVATE | MS_REC)
    sc.mount(None, target, None, prop)


def pivot(cfg: LaunchConfig, sc: Syscalls) -> None:
    """pivot_root(".", ".") then detach the old root (runc's trick: no put_old directory)."""
    sc.chdir(cfg.mergeddir)
    sc.pivot_root(".", ".")
    sc.umount2(".", MNT_DETACH)
    sc.chdir("/")


def mask_paths(sc: Syscalls) -> None:
    """After pivot_root: hide host information, make kernel knobs read-only (Docker's lists)."""
    for path in MASKED_PATHS:
        if sc.is_dir(path):
            sc.mount("tmpfs", path, "tmpfs", MS_RDONLY)
        elif sc.exists(path):
            sc.mount("/dev/null", path, None, MS_BIND)
    for path in READONLY_PATHS:
        if sc.exists(path):
            sc.mount(path, path, None, MS_BIND | MS_REC)
            sc.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def remount_root_readonly(sc: Syscalls) -> None:
    sc.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
