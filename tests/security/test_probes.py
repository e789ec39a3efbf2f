"""The probe suite (issue 13): what a default container must not be able to do, one test per
probe, each with a control that shows the same probe succeeds where it should.

A probe is a shell script whose exit status 0 means "the thing worked" (the escape, the
privilege, the reach). In the default container (`plain`) it must fail; its control must
succeed: in the privileged container (`priv`, which has the host's capabilities, devices and
no seccomp), on the host itself, or from the other stack's own client (`peer`). A probe that
fails everywhere proves nothing, which is why every one has a control.

Scripts may use: $SP (the raw-syscall prober: `$SP NR ARG...` prints `ok N` or
`err ERRNO NAME`), {web} (the other stack's httpd address), {hostpid} (the host pid of a
container on the other stack), {daemonpid} (composerd's), {marker} (a file only the host
sees), {port} (a TCP port the host listens on at 127.0.0.1 only),
{gateway} (the plain container's gateway, the host's bridge address).
Syscall probes pass arguments that make the call fail harmlessly (EFAULT, EINVAL, EBADF) once
it is permitted: the probe asks "was it refused (EPERM)?", never does the real thing.
"""
from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.process import sysnr
from tests.security.conftest import Stacks

DOCKER_DEFAULT_CAPS = "00000000a80425fb"


@dataclass(frozen=True)
class Probe:
    id: str
    script: str
    control: str  # "priv", "host" or "peer"
    control_script: str | None = None  # the same script when None


def syscall(name: str, *args: int | str) -> str:
    """Not refused: the call came back with anything but EPERM."""
    argv = " ".join(str(a) for a in args)
    return f"r=$($SP {sysnr.number(name)} {argv}); echo \"$r\"; case \"$r\" in *EPERM*) exit 1;; esac"


def cap(bit: int, field: str = "CapEff") -> str:
    """The capability `bit` is in the set `field` of this process."""
    return (f"c=$(grep {field} /proc/self/status | cut -f2); echo $c; "
            f"[ $(( (0x$c >> {bit}) & 1 )) = 1 ]")


PROBES: list[Probe] = [
    # -- processes: the host's and other containers' are invisible
    Probe("host_pids_visible", "[ $(ls -d /proc/[0-9]* | wc -l) -gt 20 ]", "host"),
    Probe("composerd_visible", "grep -q . /proc/{daemonpid}/cmdline", "host"),
    Probe("signal_other_container", "kill -0 {hostpid}", "host"),
    Probe("ptrace_other_container",  # PTRACE_SEIZE: no stop; the tracer's exit detaches
          f"$SP {sysnr.number('ptrace')} 0x4206 {{hostpid}} | grep -q '^ok'", "host"),
    Probe("other_container_proc_root", "ls /proc/{hostpid}/root/probe/index.html", "host"),
    # -- mounts and namespaces
    Probe("mount_tmpfs", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m", "priv"),
    Probe("mount_proc", "mkdir -p /tmp/p && mount -t proc proc /tmp/p", "priv"),
    Probe("mount_bind", "mkdir -p /tmp/b && mount --bind /etc /tmp/b", "priv"),
    Probe("mount_cgroup_v1", "mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg", "priv"),
    Probe("remount_root", "mount -o remount,rw /", "priv"),
    Probe("mount_syscall", syscall("mount", 0, 0, 0, 0, 0), "priv"),
    Probe("umount_syscall", syscall("umount2", 0, 0), "priv"),
    Probe("pivot_root_syscall", syscall("pivot_root", 0, 0), "priv"),
    Probe("unshare_mount_ns", "unshare -m true", "priv"),
    Probe("unshare_user_ns", "unshare -U true", "priv"),
    Probe("unshare_net_ns", "unshare -n true", "priv"),
    Probe("unshare_syscall", syscall("unshare", 0x20000), "priv"),
    Probe("setns_pid1", "nsenter -t 1 -m true", "priv"),
    Probe("setns_syscall", syscall("setns", -1, 0), "priv"),
    Probe("open_by_handle_at", syscall("open_by_handle_at", -1, 0, 0), "priv"),
    # -- masked and read-only kernel files
    Probe("proc_timer_list", "[ -n \"$(head -c 64 /proc/timer_list)\" ]", "priv"),
    Probe("sys_firmware", "[ -n \"$(ls -A /sys/firmware)\" ]", "priv"),
    Probe("proc_keys_mask", "! grep -q ' /proc/keys ' /proc/self/mountinfo", "priv"),
    Probe("proc_acpi_mask", "! grep -q ' /proc/acpi ' /proc/self/mountinfo", "priv"),
    Probe("proc_sys_hostname", "echo cmpprobe > /proc/sys/kernel/hostname", "priv"),
    Probe("proc_sys_net", "cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward", "priv"),
    Probe("sys_writable", "cat /sys/class/net/lo/mtu > /sys/class/net/lo/mtu", "priv"),
    # -- kernel modules
    Probe("insmod", "echo junk > /tmp/x.ko; insmod /tmp/x.ko 2>&1 | grep -qv 'not permitted'", "priv"),
    Probe("init_module", syscall("init_module", 0, 0, 0), "priv"),
    Probe("finit_module", syscall("finit_module", -1, 0, 0), "priv"),
    Probe("delete_module", syscall("delete_module", 0, 0), "priv"),
    # -- devices
    Probe("block_device_open", "mknod /tmp/blk b 7 0 2>/dev/null; exec 3< /tmp/blk", "priv"),
    Probe("kmsg_open", "mknod /tmp/kmsg c 1 11 2>/dev/null; exec 3< /tmp/kmsg", "priv"),
    # (our privileged containers get Docker's default /dev too, not the host's: the host is
    # the control of these three)
    Probe("dev_has_host_disks", "ls /dev | grep -qx -e vda -e sda -e nvme0n1", "host"),
    Probe("dev_has_loop", "ls /dev | grep -q '^loop'", "host"),
    Probe("dev_has_kmsg", "[ -e /dev/kmsg ]", "host"),
    # -- capabilities: exactly Docker's default set
    Probe("capeff_beyond_docker_default", f"! grep -q 'CapEff:.{DOCKER_DEFAULT_CAPS}' /proc/self/status", "priv"),
    Probe("capbnd_beyond_docker_default", f"! grep -q 'CapBnd:.{DOCKER_DEFAULT_CAPS}' /proc/self/status", "priv"),
    Probe("cap_sys_admin", cap(21), "priv"),
    Probe("cap_sys_admin_bounding", cap(21, "CapBnd"), "priv"),
    Probe("cap_sys_module", cap(16), "priv"),
    Probe("cap_sys_rawio", cap(17), "priv"),
    Probe("cap_sys_ptrace", cap(19), "priv"),
    Probe("cap_sys_time", cap(25), "priv"),
    Probe("cap_net_admin", cap(12), "priv"),
    Probe("cap_sys_boot", cap(22), "priv"),
    Probe("cap_syslog", cap(34), "priv"),
    Probe("cap_dac_read_search", cap(2), "priv"),
    Probe("cap_bpf", cap(39), "priv"),
    # -- syscalls Docker's default profile refuses
    Probe("keyctl", syscall("keyctl", 0, 0, 0), "priv"),
    Probe("add_key", syscall("add_key", 0, 0, 0, 0, 0), "priv"),
    Probe("io_uring_setup", syscall("io_uring_setup", 0, 0), "priv"),
    Probe("bpf", syscall("bpf", 0, 0, 0), "priv"),
    Probe("perf_event_open", syscall("perf_event_open", 0, 0, -1, -1, 0), "priv"),
    Probe("clock_settime", syscall("clock_settime", 0, 0), "priv"),
    Probe("settimeofday", syscall("settimeofday", 0, 0), "priv"),
    Probe("swapon", syscall("swapon", 0, 0), "priv"),
    Probe("reboot", syscall("reboot", 0, 0, 0, 0), "priv"),
    Probe("kexec_load", syscall("kexec_load", 0, 0, 0, 0xffff0000), "priv"),
    Probe("userfaultfd", syscall("userfaultfd", 0), "priv"),
    Probe("syslog", syscall("syslog", 10, 0, 0), "priv"),
    Probe("acct", syscall("acct", 0), "priv"),
    # -- identity: the container's names are its own
    Probe("sethostname", "hostname cmpprobe", "priv"),
    Probe("chroot_escape", "cd /; cd ../../../..; chroot . test -e {marker}", "host"),
    Probe("proc1_root_escape", "test -e /proc/1/root{marker}", "host",
          "test -e /proc/{daemonpid}/root{marker}"),
    # -- network
    Probe("ip_link_set", "ip link set lo mtu 65000", "priv"),
    Probe("other_stack_by_address", "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | "
          "nc -w 3 {web} 8080 | grep -q cmp-other-stack", "peer"),
    Probe("other_stack_ping", "ping -c 1 -W 2 {web}", "peer"),
    Probe("other_stack_by_name", "nslookup web | grep -q '{web}'", "peer"),
    Probe("host_loopback_via_gateway", "nc -w 3 {gateway} {port} </dev/null | grep -q cmp-loopback",
          "host", "busybox nc -w 3 127.0.0.1 {port} </dev/null | grep -q cmp-loopback"),
]


@pytest.fixture(scope="module")
def loopback_port() -> Iterator[int]:
    """A host service bound to 127.0.0.1 only: it greets each client with 'cmp-loopback'."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    import threading

    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            with c:
                c.sendall(b"cmp-loopback\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


@pytest.fixture(scope="module")
def values(stacks: Stacks, loopback_port: int) -> dict[str, str]:
    route = stacks.sh("plain", "ip -4 route show default").stdout.split()
    return {"web": stacks.ip("web"), "hostpid": str(stacks.host_pid("web")),
            "daemonpid": str(stacks.rig.env.daemon_pid()),
            "marker": str(stacks.probe_dir / "index.html"),
            "port": str(loopback_port), "gateway": route[route.index("via") + 1]}


def run(stacks: Stacks, where: str, script: str) -> subprocess.CompletedProcess[str]:
    if where == "host":
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SP": str(stacks.probe_dir / "sysprobe")}
        return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True,
                              timeout=60, cwd="/")
    return stacks.sh(where, "SP=/probe/sysprobe; " + script)


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_probe(stacks: Stacks, values: dict[str, str], probe: Probe) -> None:
    script = probe.script.format(**values)
    denied = run(stacks, "plain", script)
    control = run(stacks, probe.control, (probe.control_script or probe.script).format(**values))
    assert control.returncode == 0, (
        f"control in {probe.control} failed, so the probe proves nothing: `{script}`\n"
        f"{control.stdout}{control.stderr}")
    assert denied.returncode != 0, (
        f"a default container could: `{script}`\n{denied.stdout}{denied.stderr}")


def test_hostname_change_stays_in_the_container(stacks: Stacks) -> None:
    """sethostname's control succeeded in `priv`: the host's name did not change with it."""
    before = os.uname().nodename
    r = stacks.sh("priv", "hostname cmpprobe2 && hostname")
    assert r.stdout.strip() == "cmpprobe2", r.stdout + r.stderr
    assert os.uname().nodename == before == Path("/proc/sys/kernel/hostname").read_text().strip()


def test_suite_size() -> None:
    """The issue asked for the ~60-probe suite: keep it from shrinking unnoticed."""
    assert len(PROBES) >= 60
    assert len({p.id for p in PROBES}) == len(PROBES)
