"""The launch sequence on a recording fake kernel: order and arguments, no root needed."""
from __future__ import annotations

import errno
import os

import pytest

from runtime.process import init as seq
from runtime.process import security
from runtime.process.config import CAPS, DEFAULT_CAPS, LaunchConfig, MountPoint, Security, cap_mask
from runtime.process.syscalls import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUTS,
    MS_BIND,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    PR_CAP_AMBIENT,
    PR_CAPBSET_DROP,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    RecordingSyscalls,
)
from runtime.types import Ulimit

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\n"


def make_cfg(**kw: object) -> LaunchConfig:
    base: dict[str, object] = dict(
        id="c1", argv=("sleep", "1"), state_dir="/state", mergeddir="/m",
        lowerdirs=("/l2", "/l1"), upperdir="/u", workdir="/w", hostname="web",
        domainname="example", env=("A=1",), user="app", security=Security(no_new_privs=True),
        mounts=(MountPoint("bind", "/data/sub", "/host/sub"), MountPoint("bind", "/data", "/host/d",
                                                                          read_only=True),
                MountPoint("tmpfs", "/run", options=("size=1m",))),
        etc_files={"/etc/hosts": "/state/hosts"},
        sysctls={"net.core.somaxconn": "512"}, rlimits=(Ulimit("nofile", 100, 200),))
    base.update(kw)
    return LaunchConfig(**base)  # type: ignore[arg-type]


def fake() -> RecordingSyscalls:
    sc = RecordingSyscalls(
        files={"/etc/passwd": PASSWD, "/etc/group": GROUP, "/proc/sys/kernel/cap_last_cap": "40\n",
               "/proc/kcore": "", "/proc/keys": "", "/proc/sysrq-trigger": ""},
        dirs={"/host/sub", "/host/d", "/proc/acpi", "/proc/sys", "/proc/fs", "/sys/firmware"})
    sc.executables.add("/bin/sleep")
    return sc


def run_all(cfg: LaunchConfig, sc: RecordingSyscalls) -> None:
    seq.enter_namespaces(cfg, sc)
    ident = seq.setup_container(cfg, sc)
    security.apply(ident, sc)
    sc.chdir(cfg.cwd)
    env = seq.build_env(cfg.env, ident.user, cfg.hostname)
    seq.exec_command(list(cfg.argv), env, sc, keep_fds=(7,))


def test_namespaces_before_any_mount_and_cgroupns_after_go() -> None:
    sc = fake()
    run_all(make_cfg(), sc)
    first = sc.calls[0]
    assert first == ("unshare", CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWNS)
    cg = sc.index("unshare", CLONE_NEWCGROUP)
    assert cg < sc.names().index("mount")
    assert sc.calls[sc.names().index("mount")] == ("mount", None, "/", None, MS_REC | MS_PRIVATE,
                                                   None)


def test_join_namespaces_first_and_skip_unshare_of_joined() -> None:
    sc = fake()
    cfg = make_cfg(join_namespaces={"net": "/proc/42/ns/net", "ipc": "/proc/42/ns/ipc"})
    seq.enter_namespaces(cfg, sc)
    assert sc.names()[:2] == ["open_ns", "open_ns"]  # all opened before any setns
    assert [c[1] for c in sc.calls[:2]] == ["/proc/42/ns/ipc", "/proc/42/ns/net"]
    assert sc.names().count("setns") == 2
    assert sc.calls[-1] == ("unshare", CLONE_NEWUTS | CLONE_NEWNS)


def test_a_fresh_network_namespace_gets_lo_up_before_ready() -> None:
    """runc and crun bring lo up in a netns they create; our init does it too (right after
    the unshare, before "ready"), so network_mode none needs no trip of the engine into it.
    A joined netns (container:, host) is someone else's: left as it is."""
    sc = fake()
    seq.enter_namespaces(make_cfg(), sc)
    assert sc.calls == [("unshare", CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWNS),
                        ("loopback_up",)]
    for kw in ({"join_namespaces": {"net": "/proc/42/ns/net"}},
               {"namespaces": ("mnt", "uts", "ipc", "pid")}):
        sc = fake()
        seq.enter_namespaces(make_cfg(**kw), sc)
        assert "loopback_up" not in sc.names()


def test_rootfs_mount_order() -> None:
    sc = fake()
    run_all(make_cfg(), sc)
    overlay = sc.index("mount", "overlay", "/m", "overlay", 0,
                       "lowerdir=/l2:/l1,upperdir=/u,workdir=/w")
    proc = sc.index("mount", "proc", "/m/proc")
    sysfs = sc.index("mount", "sysfs", "/m/sys")
    dev = sc.index("mount", "tmpfs", "/m/dev")
    null = sc.index("mknod", "/m/dev/null")
    pts = sc.index("mount", "devpts", "/m/dev/pts")
    shm = sc.index("mount", "shm", "/m/dev/shm")
    data = sc.index("mount", "/host/d", "/m/data")
    sub = sc.index("mount", "/host/sub", "/m/data/sub")
    hosts = sc.index("mount", "/state/hosts", "/m/etc/hosts")
    pivot = sc.index("pivot_root")
    assert overlay < proc < sysfs < dev < null < pts < shm < data < sub < hosts < pivot
    assert sc.calls[sysfs][4] & MS_RDONLY  # /sys read-only unless privileged
    assert "size=67108864" in str(sc.calls[shm][5])
    # the read-only volume is remounted read-only right after its bind
    assert sc.calls[data + 1] == ("mount", None, "/m/data", None, MS_BIND | MS_REMOUNT | MS_RDONLY,
                                  None)
    # pivot_root(".", ".") from inside the new root, then the old root is detached
    assert sc.calls[pivot - 1] == ("chdir", "/m")
    assert sc.calls[pivot] == ("pivot_root", ".", ".")
    assert sc.names()[pivot + 1] == "umount2"


def test_after_pivot_sysctls_masks_identity_exec() -> None:
    sc = fake()
    run_all(make_cfg(read_only=True), sc)
    pivot = sc.index("pivot_root")
    sysctl = sc.index("write_file", "/proc/sys/net/core/somaxconn", "512")
    kcore = sc.index("mount", "/dev/null", "/proc/kcore")
    acpi = sc.index("mount", "tmpfs", "/proc/acpi")
    procsys_ro = sc.index("mount", None, "/proc/sys", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    root_ro = sc.index("mount", None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    host = sc.index("sethostname", "web")
    rlimit = sc.index("setrlimit", "nofile", 100, 200)
    bset = sc.index("prctl", PR_CAPBSET_DROP)
    keep = sc.index("prctl", PR_SET_KEEPCAPS, 1)
    groups = sc.index("setgroups")
    gid = sc.index("setresgid", 1000)
    uid = sc.index("setresuid", 1000)
    capset = sc.index("capset")
    ambient = sc.index("prctl", PR_CAP_AMBIENT)
    nnp = sc.index("prctl", PR_SET_NO_NEW_PRIVS, 1)
    close = sc.index("close_fds")
    execve = sc.index("execve")
    assert pivot < sysctl < procsys_ro  # sysctls before /proc/sys turns read-only
    assert pivot < kcore and pivot < acpi
    assert procsys_ro < root_ro < host < rlimit < bset
    assert bset < keep < groups < gid < uid < capset < ambient < nnp < close < execve
    assert sc.calls[execve][1] == "/usr/local/sbin/sleep" or sc.calls[execve][1] == "/bin/sleep"
    assert sc.calls[-1][1] == "/bin/sleep"
    env = sc.calls[-1][3]
    assert "A=1" in env and "HOME=/home/app" in env and "HOSTNAME=web" in env
    assert any(e.startswith("PATH=") for e in env)


def test_capabilities_bounding_and_sets() -> None:
    sc = fake()
    run_all(make_cfg(), sc)
    dropped = {c[2] for c in sc.calls if c[:2] == ("prctl", PR_CAPBSET_DROP)}
    kept = {CAPS[n] for n in DEFAULT_CAPS}
    assert dropped == set(range(41)) - kept
    mask = cap_mask(DEFAULT_CAPS)
    assert sc.calls[sc.index("capset")] == ("capset", mask, mask, 0)


def test_privileged_skips_masks_and_keeps_sys_rw() -> None:
    sc = fake()
    # a host (nested sandbox) whose bounding set lacks SYS_RESOURCE (24)
    held = ((1 << 41) - 1) & ~(1 << 24)
    sc.files["/proc/self/status"] = f"Name:\tinit\nCapBnd:\t{held:016x}\n"
    run_all(make_cfg(privileged=True, security=Security(tuple(CAPS))), sc)
    with pytest.raises(ValueError):
        sc.index("mount", "/dev/null", "/proc/kcore")
    assert not sc.calls[sc.index("mount", "sysfs", "/m/sys")][4] & MS_RDONLY
    # everything held is kept; what the host never gave us cannot be, and is not asked for
    assert [c[2] for c in sc.calls if c[:2] == ("prctl", PR_CAPBSET_DROP)] == [24]
    assert sc.calls[sc.index("capset")] == ("capset", held, held, 0)


def test_plain_directory_rootfs_is_a_bind() -> None:
    sc = fake()
    run_all(make_cfg(lowerdirs=("/rootfs",), upperdir="", workdir=""), sc)
    i = sc.index("mount", "/rootfs", "/m")
    assert sc.calls[i][4] == MS_BIND | MS_REC


def test_command_not_found_is_127_with_dockers_message() -> None:
    sc = fake()
    with pytest.raises(seq.ExecFailed) as ei:
        seq.exec_command(["nosuchcmd"], ["PATH=/bin:/usr/bin"], sc, keep_fds=())
    assert ei.value.exit_code == 127
    assert str(ei.value) == 'exec: "nosuchcmd": executable file not found in $PATH'
    assert [c[1] for c in sc.calls if c[0] == "execve"] == ["/bin/nosuchcmd", "/usr/bin/nosuchcmd"]


def test_permission_denied_is_126() -> None:
    sc = fake()
    sc.fail["execve"] = PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(seq.ExecFailed) as ei:
        seq.exec_command(["/data/script.sh"], [], sc, keep_fds=())
    assert ei.value.exit_code == 126
    assert "permission denied" in str(ei.value)


class FakeChannel:
    def __init__(self, replies: list[dict[str, object] | None]) -> None:
        self.sent: list[dict[str, object]] = []
        self.replies = replies

    def send(self, msg: dict[str, object]) -> None:
        self.sent.append(msg)

    def recv(self) -> dict[str, object] | None:
        return self.replies.pop(0)


def test_run_init_reports_ready_then_waits_for_go() -> None:
    sc = fake()
    chan = FakeChannel([None])  # the engine closed the connection: prepare failed
    assert seq.run_init(make_cfg(), sc, chan, 7) == 125
    assert chan.sent[0]["ready"] is True and int(chan.sent[0]["pid"]) > 0  # type: ignore[call-overload]
    assert "mount" not in sc.names()  # nothing was set up before "go"
    assert chan.sent[0]["monitor_pid"] == os.getppid()  # our parent, unless told


def test_run_init_reports_the_monitor_it_is_given() -> None:
    # the init's parent is the launch child (or its stage-1 child), which exits as the
    # init starts: the monitor adopts the init, and the engine must know the monitor
    chan = FakeChannel([None])
    seq.run_init(make_cfg(), fake(), chan, 7, monitor_pid=4242)
    assert chan.sent[0]["monitor_pid"] == 4242


def test_run_init_bad_user_reaches_the_engine(capfd: pytest.CaptureFixture[str]) -> None:
    sc = fake()
    chan = FakeChannel([{"go": True}])
    code = seq.run_init(make_cfg(user="ghost"), sc, chan, 7)
    assert code == 125
    assert chan.sent[-1]["exit_code"] == 125
    assert "unable to find user ghost" in str(chan.sent[-1]["error"])
    assert "unable to find user ghost" in capfd.readouterr().err  # also in the container log
    assert "execve" not in sc.names()


def test_run_init_exec_not_found_reaches_the_engine() -> None:
    sc = fake()
    chan = FakeChannel([{"go": True}])
    assert seq.run_init(make_cfg(argv=("nope",), user=""), sc, chan, 7) == 127
    assert chan.sent[-1] == {"error": 'exec: "nope": executable file not found in $PATH',
                             "exit_code": 127}
