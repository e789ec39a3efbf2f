"""A real container on the real kernel: namespaces, rootfs, /proc, /dev, caps."""
from __future__ import annotations

import os
import re
from pathlib import Path

from runtime.process.config import DEFAULT_CAPS, MountPoint, cap_mask
from runtime.types import Ulimit
from tests.integration.process.conftest import Env, host_has_mount, sh


async def test_pid1_is_the_command_and_host_processes_are_invisible(env: Env) -> None:
    status, out, _ = await env.run(sh("echo pid=$$; ls /proc | grep -c '^[0-9]'; ps"))
    assert status.code == 0
    lines = out.splitlines()
    assert lines[0] == "pid=1"
    assert int(lines[1]) <= 3  # sh, ls, grep: none of the host's processes
    assert not any(re.match(r"\s*\d+\s", line) and "python" in line for line in lines)


async def test_hostname_and_domainname(env: Env) -> None:
    status, out, _ = await env.run(sh("hostname; cat /proc/sys/kernel/domainname; echo $HOSTNAME"),
                                   hostname="web-1", domainname="example.org")
    assert status.code == 0
    assert out.split() == ["web-1", "example.org", "web-1"]
    assert os.uname().nodename != "web-1"


async def test_writes_land_in_the_upper_dir_only(env: Env) -> None:
    cfg = env.config(sh("echo data > /etc/newfile; echo x >> /etc/hostname"))
    status = await env.launcher.wait(await env.launch(cfg))
    assert status.code == 0
    assert (Path(cfg.upperdir) / "etc/newfile").read_text() == "data\n"
    assert not (env.rootfs / "etc/newfile").exists()
    assert (env.rootfs / "etc/hostname").read_text() == "busybox\n"  # lower untouched
    assert (Path(cfg.upperdir) / "etc/hostname").read_text() == "busybox\nx\n"


async def test_ipc_and_net_namespaces_are_not_shared(env: Env) -> None:
    status, out, _ = await env.run(sh(
        "readlink /proc/self/ns/ipc; readlink /proc/self/ns/net; ip link"))
    assert status.code == 0
    lines = out.splitlines()
    assert lines[0] != os.readlink("/proc/self/ns/ipc")
    assert lines[1] != os.readlink("/proc/self/ns/net")
    links = [line for line in lines[2:] if re.match(r"^\d+: ", line)]
    assert len(links) == 1 and links[0].startswith("1: lo:")


async def test_host_network_mode_sees_host_links(env: Env) -> None:
    status, out, _ = await env.run(sh("readlink /proc/self/ns/net"),
                                   namespaces=("mnt", "uts", "ipc", "pid", "cgroup"))
    assert status.code == 0
    assert out.strip() == os.readlink("/proc/self/ns/net")


async def test_default_capabilities(env: Env) -> None:
    status, out, _ = await env.run(["cat", "/proc/self/status"])
    assert status.code == 0
    fields = dict(line.split(":\t") for line in out.splitlines() if line.startswith("Cap"))
    want = f"{cap_mask(DEFAULT_CAPS):016x}"
    assert fields["CapEff"] == want == "00000000a80425fb"
    assert fields["CapBnd"] == want and fields["CapPrm"] == want
    assert fields["CapInh"] == fields["CapAmb"] == "0000000000000000"


async def test_non_root_user_has_no_effective_caps(env: Env) -> None:
    status, out, _ = await env.run(sh("id; grep CapEff /proc/self/status"), user="www-data")
    assert status.code == 0
    assert out.splitlines()[0].startswith("uid=33(www-data) gid=33(www-data)")
    assert out.splitlines()[1].split()[1] == "0000000000000000"


async def test_proc_sys_read_only_and_masked_paths(env: Env) -> None:
    status, out, err = await env.run(sh(
        "echo 1 > /proc/sys/kernel/shmmax && echo WROTE; "
        "cat /proc/timer_list /proc/keys | wc -c; grep -E ' /proc/sys | /sys ' /proc/mounts; ls /proc/acpi | wc -l"))
    assert status.code == 0
    assert "WROTE" not in out
    assert "Read-only file system" in err
    lines = out.splitlines()
    # masked: /dev/null over them (/proc/kcore too, where the kernel has one; this one hasn't)
    assert Path("/proc/timer_list").read_text() != ""
    assert lines[0].strip() == "0"
    ro = {line.split()[1]: line.split()[3].split(",")[0] for line in lines[1:3]}
    assert ro == {"/proc/sys": "ro", "/sys": "ro"}
    assert lines[3].strip() == "0"


async def test_dev_has_devices_pts_shm(env: Env) -> None:
    status, out, err = await env.run(sh(
        "ls /dev | sort | tr '\\n' ' '; echo; echo hi > /dev/null && head -c 4 /dev/zero | wc -c;"
        " grep -E ' /dev/shm | /dev/pts ' /proc/mounts"), shm_size=8 * 1024 * 1024)
    assert status.code == 0, err
    lines = out.splitlines()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
                 "fd", "stdin", "stdout", "stderr", "mqueue"):
        assert name in lines[0].split(), name
    assert lines[1].strip() == "4"
    shm = next(line for line in lines if " /dev/shm " in line)
    assert "size=8192k" in shm


async def test_mounts_read_only_rootfs_etc_files_sysctls_rlimits(env: Env) -> None:
    vol = env.tmp / "vol"
    vol.mkdir()
    hosts = env.tmp / "hosts"
    hosts.write_text("10.9.8.7 db\n")
    status, out, err = await env.run(
        sh("echo v > /data/f; touch /x 2>/dev/null || echo ROOT-RO; echo t > /scratch/t && "
           "echo TMPFS; grep db /etc/hosts; cat /proc/sys/net/core/somaxconn; ulimit -n; "
           "touch /ro/x 2>/dev/null || echo VOL-RO"),
        read_only=True, mounts=(MountPoint("bind", "/data", str(vol)),
                                MountPoint("tmpfs", "/scratch", options=("size=1m",)),
                                MountPoint("bind", "/ro", str(env.rootfs / "etc"),
                                           read_only=True)),
        etc_files={"/etc/hosts": str(hosts)}, sysctls={"net.core.somaxconn": "321"},
        rlimits=(Ulimit("nofile", 100, 200),))
    assert status.code == 0, err
    assert out.split() == ["ROOT-RO", "TMPFS", "10.9.8.7", "db", "321", "100", "VOL-RO"]
    assert (vol / "f").read_text() == "v\n"
    assert not host_has_mount(str(vol))


async def test_working_dir_is_created_and_used(env: Env) -> None:
    status, out, _ = await env.run(["pwd"], cwd="/srv/app")
    assert (status.code, out) == (0, "/srv/app\n")


async def test_tty(env: Env) -> None:
    status, out, _ = await env.run(sh("test -t 0 && test -t 1 && test -t 2 && echo TTY"),
                                   tty=True)
    assert status.code == 0
    assert out.strip() == "TTY"
    status, out, _ = await env.run(sh("test -t 1 || echo NOTTY"))
    assert out.strip() == "NOTTY"


async def test_a_tty_has_a_name_inside_dev_console(env: Env) -> None:
    # the pty comes from the host's devpts; /dev/console is bound to it so that ttyname(3)
    # (tty, tmux, sudo...) can name it inside, as in a Docker container started with -t
    status, out, _ = await env.run(sh("tty; stat -c '%t:%T' /dev/console"), tty=True)
    name, dev = out.split()
    assert (status.code, name) == (0, "/dev/console")
    assert int(dev.split(":")[0], 16) == 136  # a pty slave (UNIX98_PTY_SLAVE_MAJOR)
    status, out, _ = await env.run(sh("tty; test -e /dev/console || echo no-console"))
    assert out.split() == ["not", "a", "tty", "no-console"]  # without a tty: neither


async def test_join_net_namespace_of_another_container(env: Env) -> None:
    first = await env.launch(env.config(["sleep", "30"]))
    their_ns = os.readlink(f"/proc/{first.pid}/ns/net")
    status, out, _ = await env.run(["readlink", "/proc/self/ns/net"],
                                   join_namespaces={"net": f"/proc/{first.pid}/ns/net"})
    assert status.code == 0
    assert out.strip() == their_ns
    env.launcher.kill(first)
    assert (await env.launcher.wait(first)).code == 137
