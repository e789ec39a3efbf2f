"""security.apply -- the one function that confines the init and every exec -- on the
recording fake kernel: its order, with and without no_new_privs, seccomp and AppArmor."""
from __future__ import annotations

import base64

from runtime.process import security
from runtime.process.config import DEFAULT_CAPS, Security, cap_mask
from runtime.process.security import Identity
from runtime.process.syscalls import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    RecordingSyscalls,
)
from runtime.process.users import ExecUser

USER = ExecUser(1000, 1000, (1000, 27), "/home/app")
PROG = bytes(range(16))  # two instructions: the content does not matter to the order


def run(sec: Security, files: dict[str, str] | None = None) -> RecordingSyscalls:
    sc = RecordingSyscalls(files=files)
    security.apply(Identity(USER, sec, 40), sc)
    return sc


def sec(nnp: bool, prog: bytes = PROG, apparmor: str = "", flags: int = 0) -> Security:
    return Security(DEFAULT_CAPS, nnp, base64.b64encode(prog).decode(), flags, apparmor)


def test_with_no_new_privs_the_filter_is_last() -> None:
    sc = run(sec(True, flags=2))
    names = sc.names()
    assert names.count("seccomp") == 1 and sc.calls[-1] == ("seccomp", PROG, 2)
    assert sc.calls[-2] == ("prctl", PR_SET_NO_NEW_PRIVS, 1, 0)
    mask = cap_mask(DEFAULT_CAPS, 40)
    i = sc.index("setresuid")
    assert sc.calls[sc.index("setgroups"):i + 3] == [
        ("setgroups", (1000, 27)), ("setresgid", 1000), ("setresuid", 1000),
        ("prctl", PR_SET_KEEPCAPS, 0, 0), ("capset", mask, mask, 0)]
    assert sc.index("prctl", PR_SET_KEEPCAPS, 1) < sc.index("setgroups")
    assert sc.index("capset") < sc.index("prctl", PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) \
        < sc.index("prctl", PR_SET_NO_NEW_PRIVS)


def test_without_no_new_privs_the_filter_goes_first() -> None:
    """A filter then needs CAP_SYS_ADMIN: before the capset and setresuid that drop it."""
    sc = run(sec(False))
    names = sc.names()
    assert names.count("seccomp") == 1 and names[0] == "seccomp"
    assert ("prctl", PR_SET_NO_NEW_PRIVS, 1, 0) not in sc.calls


def test_unconfined_installs_no_filter() -> None:
    sc = run(Security(DEFAULT_CAPS, True))
    assert "seccomp" not in sc.names() and "write_file" not in sc.names()


def test_apparmor_profile_is_asked_for_first() -> None:
    attr = "/proc/thread-self/attr/apparmor/exec"
    sc = run(sec(True, apparmor="composer-default"), files={attr: ""})
    assert sc.calls[0] == ("write_file", attr, "exec composer-default")
    # kernels before 5.8 have only the shared attr file
    sc = run(sec(False, apparmor="mine"))
    assert sc.calls[0] == ("write_file", "/proc/thread-self/attr/exec", "exec mine")
    assert sc.names()[1] == "seccomp"


def test_the_reaper_init_changes_its_own_profile() -> None:
    sc = RecordingSyscalls(files={"/proc/thread-self/attr/apparmor/current": ""})
    security.confine_self(Identity(USER, sec(True, apparmor="composer-default"), 40), sc)
    assert sc.calls == [("write_file", "/proc/thread-self/attr/apparmor/current",
                         "changeprofile composer-default")]
    sc = RecordingSyscalls()
    security.confine_self(Identity(USER, sec(True), 40), sc)
    assert sc.calls == []


def test_make_compiles_the_profile_for_the_capabilities() -> None:
    plain = security.make(seccomp_profile="default")
    admin = security.make((*DEFAULT_CAPS, "SYS_ADMIN"), seccomp_profile="default",
                          no_new_privs=True, apparmor="x")
    assert plain.seccomp_program and len(plain.seccomp_program) % 8 == 0
    assert admin.seccomp_program != plain.seccomp_program
    assert admin.no_new_privs and admin.apparmor == "x"
    assert security.make().seccomp == ""
