"""Every process the engine starts in a container -- its init, `exec`, health checks -- runs
with the container's security settings (issue 13 item 2), and security_opt seccomp works
end to end (a custom JSON file, unconfined, a bad file)."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from runtime.engine import Engine
from runtime.errors import InvalidArgument
from runtime.types import ContainerSpec, Healthcheck

STATUS_FIELDS = ("Uid", "Gid", "NoNewPrivs", "Seccomp", "Seccomp_filters", "CapInh", "CapPrm",
                 "CapEff", "CapBnd", "CapAmb")
# the container's root can make a setuid-root copy of busybox, and let its `id` keep the
# privilege (busybox drops setuid for applets unless /etc/busybox.conf grants it)
MAKE_SUID = ("mkdir -p /suid && cp /bin/busybox /suid/busybox && chmod 4755 /suid/busybox && "
             "printf '[SUID]\\nid = ssx root.root\\n' > /etc/busybox.conf && "
             "chmod 600 /etc/busybox.conf")
REPORT = ("grep -E '^(" + "|".join(STATUS_FIELDS) + "):' /proc/self/status; "
          "[ -x /suid/busybox ] && echo suid-euid=$(/suid/busybox id -u); true")


def fields(text: str) -> dict[str, str]:
    return {m.group(1): " ".join(m.group(2).split())
            for m in re.finditer(r"^(\w+):\s+(.*)$", text, re.M) if m.group(1) in STATUS_FIELDS}


async def start(engine: Engine, name: str, suid: bool = True, **kw: object) -> int:
    await engine.create_container(ContainerSpec(name=name, image="busybox",
                                                command=("sleep", "600"), **kw))  # type: ignore[arg-type]
    await engine.start_container(name)
    if suid:
        res = await engine.exec_run(name, ["sh", "-c", MAKE_SUID], user="0")
        assert res.exit_code == 0, res
    return (await engine.inspect_container(name)).pid


async def health_report(engine: Engine, cid: str) -> str:
    for _ in range(200):
        state = engine.supervisor.health(cid)
        for result in (state.log if state else ()):
            if "suid-euid=" in result.output:
                return result.output
        await asyncio.sleep(0.05)
    raise AssertionError(f"no health check ran after the setup: {state}")


async def test_exec_and_health_check_get_the_containers_settings(engine: Engine) -> None:
    hc = Healthcheck(test=("CMD-SHELL", REPORT), interval=0.2, timeout=10, retries=1)
    pid = await start(engine, "nnp", user="1000", security_opt=("no-new-privileges:true",),
                      healthcheck=hc)
    init = fields(Path(f"/proc/{pid}/status").read_text())
    assert init["NoNewPrivs"] == "1" and init["Seccomp"] == "2", init
    assert init["Uid"].split()[1] == "1000", init

    res = await engine.exec_run("nnp", ["sh", "-c", REPORT])
    assert res.exit_code == 0, res
    assert "suid-euid=1000" in res.stdout, res.stdout  # no_new_privs: setuid does nothing
    assert fields(res.stdout) == init, res.stdout

    cid = (await engine.inspect_container("nnp")).id
    report = await health_report(engine, cid)
    assert "suid-euid=1000" in report, report
    assert fields(report) == init, report


async def test_the_control_without_no_new_privileges_gets_root(engine: Engine) -> None:
    """The same probe where setuid should work: euid 0, NoNewPrivs 0 -- in pid 1 and exec."""
    pid = await start(engine, "plain", user="1000")
    init = fields(Path(f"/proc/{pid}/status").read_text())
    assert init["NoNewPrivs"] == "0" and init["Seccomp"] == "2", init
    res = await engine.exec_run("plain", ["sh", "-c", REPORT])
    assert "suid-euid=0" in res.stdout, res.stdout
    assert fields(res.stdout) == init, res.stdout


async def test_exec_keeps_capabilities_and_seccomp_of_the_service(engine: Engine) -> None:
    """cap_add/cap_drop and seccomp=unconfined reach the exec as they reach pid 1."""
    pid = await start(engine, "caps", cap_add=("NET_ADMIN",), cap_drop=("CHOWN",),
                      security_opt=("seccomp=unconfined",))
    init = fields(Path(f"/proc/{pid}/status").read_text())
    assert init["Seccomp"] == "0", init
    res = await engine.exec_run("caps", ["sh", "-c", REPORT])
    assert fields(res.stdout) == init, res.stdout
    assert int(init["CapEff"], 16) & (1 << 12) and not int(init["CapEff"], 16) & 1, init


async def test_a_privileged_exec_widens_only_the_capabilities(engine: Engine) -> None:
    """`privileged` on one exec (a hook's, `exec --privileged`): every capability, while
    seccomp and no_new_privs stay the container's; the next plain exec is back to the
    container's set."""
    pid = await start(engine, "privexec", suid=False, cap_drop=("CHOWN",),
                      security_opt=("no-new-privileges:true",))
    init = fields(Path(f"/proc/{pid}/status").read_text())
    wide = fields((await engine.exec_run("privexec", ["sh", "-c", REPORT], privileged=True)).stdout)
    assert int(wide["CapEff"], 16) & 1 and int(wide["CapEff"], 16) & (1 << 21), wide  # CHOWN, SYS_ADMIN
    assert wide["CapBnd"] == wide["CapEff"], wide
    assert (wide["Seccomp"], wide["NoNewPrivs"]) == (init["Seccomp"], init["NoNewPrivs"]) == ("2", "1")
    plain = fields((await engine.exec_run("privexec", ["sh", "-c", REPORT])).stdout)
    assert plain["CapEff"] == init["CapEff"], (plain, init)


async def test_a_custom_seccomp_profile_file(engine: Engine, tmp_path: Path) -> None:
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    await start(engine, "custom", suid=False, security_opt=(f"seccomp={profile}",))
    profile.write_text("{}")  # read at create: a later edit does not change the container
    res = await engine.exec_run("custom", ["sh", "-c", "mkdir /made 2>&1; echo rc=$?"])
    assert "Operation not permitted" in res.stdout and "rc=1" in res.stdout, res.stdout
    assert "Seccomp:\t2" in (await engine.exec_run(
        "custom", ["grep", "Seccomp:", "/proc/self/status"])).stdout


async def test_a_bad_profile_is_one_error_naming_the_file(engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO",
                               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_OK"}]}))
    with pytest.raises(InvalidArgument, match=rf"seccomp profile {bad}: syscalls\[0\] \(read\)"
                                              r"\.action: unknown action \"SCMP_ACT_OK\""):
        await engine.create_container(ContainerSpec(name="bad", image="busybox",
                                                    security_opt=(f"seccomp={bad}",)))
    with pytest.raises(InvalidArgument, match=rf"seccomp profile {tmp_path}/missing.json: "
                                              "cannot read it: no such file"):
        await engine.create_container(ContainerSpec(
            name="bad", image="busybox", security_opt=(f"seccomp={tmp_path}/missing.json",)))
    with pytest.raises(InvalidArgument, match="unknown or unsupported option"):
        await engine.create_container(ContainerSpec(name="bad", image="busybox",
                                                    security_opt=("systempaths=unconfined",)))
    assert not [c for c in await engine.list_containers(all=True) if c.name == "bad"]
