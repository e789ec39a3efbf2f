"""userns_mode private on the real kernel: root inside is host uid 100000, image files are root's."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from runtime.process.config import DEFAULT_NAMESPACES, MountPoint
from runtime.process.userns import IdMap
from tests.integration.process.conftest import Env, sh

MAP = (IdMap(0, 100000, 65536),)


def userns(**kw: object) -> dict[str, object]:
    return dict(namespaces=("user", *DEFAULT_NAMESPACES), uid_map=MAP, gid_map=MAP, **kw)


def reachable(path: Path) -> None:
    """The mapped root is `other` for host-root-owned dirs: pytest's 0700 dirs must be o+x."""
    for p in [path, *path.parents]:
        st = p.stat()
        if not st.st_mode & 0o001:
            os.chmod(p, st.st_mode | 0o111)


async def test_root_inside_is_mapped(env: Env) -> None:
    reachable(env.tmp)
    host_file = env.tmp / "hostfile"
    host_file.write_text("host\n")
    os.chmod(host_file, 0o644)
    script = ("id -u; cat /proc/self/uid_map; stat -c '%u:%g %n' /bin/busybox /etc/passwd; "
              "echo new > /newfile; rm /etc/hostname; ls /etc/hostname 2>&1; "
              "echo pwned >> /host/hostfile || echo DENIED; mkdir /tmp/x && echo MKDIR-OK")
    cfg = env.config(sh("exec 2>&1; " + script),
                     mounts=(MountPoint("bind", "/host", str(env.tmp)),), **userns())
    launched = await env.launch(cfg)
    status = await env.launcher.wait(launched)
    out, _ = env.output(cfg)
    assert status.code == 0, out
    lines = out.splitlines()
    assert lines[0] == "0", out
    assert lines[1].split() == ["0", "100000", "65536"], out
    assert "0:0 /bin/busybox" in out and "0:0 /etc/passwd" in out, out
    assert "DENIED" in out and host_file.read_text() == "host\n", out
    assert "MKDIR-OK" in out and "No such file" in out, out
    upper = Path(cfg.upperdir)
    st = (upper / "newfile").stat()
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    assert (upper / "tmp/x").stat().st_uid == 100000
    assert Path(cfg.upperdir).stat().st_uid == 100000


async def test_userns_with_seccomp_and_exec(env: Env) -> None:
    from runtime.process.config import ExecConfig
    from runtime.process.security import make

    reachable(env.tmp)
    cfg = env.config(["sleep", "30"], security=make(seccomp_profile="default"), **userns())
    launched = await env.launch(cfg)
    status = Path(f"/proc/{launched.pid}/status").read_text()
    assert "Seccomp:\t2" in status
    uid_line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
    assert uid_line.split()[1] == "100000"  # the host sees the mapped root
    code, out, err = await env.launcher.exec_run(
        launched, ExecConfig(argv=("sh", "-c", "id -u; grep Seccomp: /proc/self/status; "
                                   "touch /made-by-exec"), security=cfg.security), timeout=10)
    assert code == 0, err
    assert out.decode().split()[:3] == ["0", "Seccomp:", "2"], out
    assert (Path(cfg.upperdir) / "made-by-exec").stat().st_uid == 100000


async def test_userns_with_a_tty_names_it(env: Env) -> None:
    reachable(env.tmp)
    status, out, _ = await env.run(sh("tty && test -t 0 && echo TTY"), tty=True, **userns())
    assert status.code == 0, out
    assert out.split() == ["/dev/console", "TTY"]


async def test_the_init_is_the_monitors_not_its_stage_one_childs(env: Env) -> None:
    """The launch child forks a stage-1 child that forks the init, and both exit; the init
    must name the monitor, not its parent of the moment, and end up the monitor's child
    (subreaper) so that the monitor reaps it (under load the engine once saw stage 1 exit:
    255)."""
    reachable(env.tmp)
    for _ in range(15):
        cfg = env.config(["sleep", "30"], **userns())
        launched = await env.launch(cfg)
        await asyncio.sleep(0.1)  # stage 1 and the launch child have exited
        stat = Path(f"/proc/{launched.pid}/stat").read_text()
        assert launched.monitor_pid == int(stat.rsplit(")", 1)[1].split()[1])
        os.kill(launched.pid, 9)
        assert (await env.launcher.wait(launched)).code == 137  # the monitor's exit.json
