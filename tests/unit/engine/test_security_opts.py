"""security_opt -> the one Security value of a container (launchcfg): Docker's syntax, the
seccomp profile's source, AppArmor with and without AppArmor in the kernel."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.containers import ContainerRecord, Resolved
from runtime.errors import InvalidArgument
from runtime.launchcfg import (
    SecurityOpts,
    apparmor_profile,
    container_security,
    read_seccomp_profile,
    seccomp_source,
    security_opts,
)
from runtime.process import seccomp
from runtime.process.config import CAPS, DEFAULT_CAPS
from runtime.process.seccomp_profile import ProfileError
from runtime.types import ContainerSpec


def spec(*opts: str, **kw: object) -> ContainerSpec:
    return ContainerSpec(name="p-web-1", image="busybox", security_opt=opts, **kw)  # type: ignore[arg-type]


def record(s: ContainerSpec, profile: str = "") -> ContainerRecord:
    resolved = Resolved("img", ("sh",), (), "/", "", "h", "SIGTERM", ("/l",),
                        seccomp_profile=profile)
    return ContainerRecord("0" * 64, s, resolved, 0.0, Path("/nonexistent"))


def test_dockers_syntax() -> None:
    assert security_opts(spec()) == SecurityOpts()
    assert security_opts(spec("no-new-privileges")).no_new_privs
    assert security_opts(spec("no-new-privileges:true")).no_new_privs
    assert security_opts(spec("no-new-privileges=true")).no_new_privs
    assert not security_opts(spec("no-new-privileges=true", "no-new-privileges=false")).no_new_privs
    assert security_opts(spec("seccomp=unconfined")).seccomp is None
    assert security_opts(spec("seccomp:unconfined")).seccomp is None
    assert security_opts(spec("seccomp=builtin")).seccomp == "default"
    assert security_opts(spec("seccomp=/etc/p.json")).seccomp == "/etc/p.json"
    assert security_opts(spec("apparmor=unconfined")).apparmor == "unconfined"
    assert security_opts(spec("apparmor:my-profile")).apparmor == "my-profile"
    assert security_opts(spec("label=disable")) == SecurityOpts()
    for bad, message in (("no-new-privileges=yes", "=true or =false"),
                         ("seccomp=", "expected key=value"),
                         ("label=type:svirt_t", "SELinux labels are not supported"),
                         ("systempaths=unconfined", "unknown or unsupported option"),
                         ("bogus", "expected key=value")):
        with pytest.raises(InvalidArgument, match=f"container p-web-1: security_opt '{bad}': "
                                                  f".*{message}"):
            security_opts(spec(bad))


def test_where_the_seccomp_profile_comes_from() -> None:
    assert seccomp_source(spec()) == "default"
    assert seccomp_source(spec("seccomp=unconfined")) is None
    assert seccomp_source(spec(privileged=True)) is None  # Docker: privileged is unconfined
    assert seccomp_source(spec("seccomp=/p.json", privileged=True)) is None


def test_a_custom_profile_is_read_and_checked_at_create(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    assert read_seccomp_profile(spec(f"seccomp={good}")) == good.read_text()
    assert read_seccomp_profile(spec()) == "" and read_seccomp_profile(
        spec("seccomp=unconfined")) == ""
    inline = '{"defaultAction": "SCMP_ACT_LOG"}'
    assert read_seccomp_profile(spec(f"seccomp={inline}")) == inline
    with pytest.raises(InvalidArgument, match="give an absolute path"):
        read_seccomp_profile(spec("seccomp=p.json"))
    (tmp_path / "bad.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []}')
    with pytest.raises(ProfileError, match=f'seccomp profile {tmp_path}/bad.json: unknown key '
                                           '"sycalls"'):
        read_seccomp_profile(spec(f"seccomp={tmp_path}/bad.json"))


def test_apparmor_profile_per_host() -> None:
    # a kernel without AppArmor: nothing by default, a named profile is an error
    assert apparmor_profile(spec(), False) == ""
    assert apparmor_profile(spec("apparmor=unconfined"), False) == ""
    with pytest.raises(InvalidArgument, match="apparmor=mine: AppArmor is not enabled in this "
                                              "kernel: remove the option"):
        apparmor_profile(spec("apparmor=mine"), False)
    # with AppArmor: ours by default, none for privileged (as Docker), or the named one
    assert apparmor_profile(spec(), True) == "composer-default"
    assert apparmor_profile(spec(privileged=True), True) == ""
    assert apparmor_profile(spec("apparmor=mine", privileged=True), True) == "mine"
    assert apparmor_profile(spec("apparmor=unconfined"), True) == ""


def test_container_security_is_one_value_for_every_process(tmp_path: Path) -> None:
    s = spec("no-new-privileges:true", cap_add=("NET_ADMIN",), cap_drop=("CHOWN",))
    sec = container_security(record(s), host_has_apparmor=True)
    assert sec.no_new_privs and sec.apparmor == "composer-default"
    assert "NET_ADMIN" in sec.capabilities and "CHOWN" not in sec.capabilities
    want = seccomp.compile_filter("default", sec.capabilities)
    assert sec.seccomp_program == want.program and sec.seccomp_flags == 0
    assert container_security(record(s), True) == sec  # the same inputs, the same value

    privileged = container_security(record(spec(privileged=True)), host_has_apparmor=False)
    assert privileged.capabilities == tuple(CAPS) and privileged.seccomp == ""
    assert privileged.apparmor == ""

    text = json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                       "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})
    custom = container_security(record(spec("seccomp=/p.json"), text), False)
    assert custom.seccomp_flags == 4 and set(custom.capabilities) == set(DEFAULT_CAPS)
    assert custom.seccomp_program == seccomp.compile_filter(text, custom.capabilities).program
