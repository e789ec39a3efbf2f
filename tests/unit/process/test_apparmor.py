"""The host side of AppArmor without a kernel: detection, the profile list, our profile's
text (the real loading and enforcement run in the Debian VM: tests/host/security)."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.process import apparmor


def fake_root(tmp_path: Path, enabled: str = "Y\n", profiles: str = "") -> str:
    (tmp_path / "sys/module/apparmor/parameters").mkdir(parents=True)
    (tmp_path / "sys/module/apparmor/parameters/enabled").write_text(enabled)
    (tmp_path / "sys/kernel/security/apparmor").mkdir(parents=True)
    (tmp_path / "sys/kernel/security/apparmor/profiles").write_text(profiles)
    return str(tmp_path)


def test_enabled_needs_the_module_and_securityfs(tmp_path: Path) -> None:
    assert apparmor.enabled(fake_root(tmp_path / "on"))
    assert not apparmor.enabled(fake_root(tmp_path / "off", enabled="N\n"))
    assert not apparmor.enabled(str(tmp_path / "none"))


def test_loaded_profiles(tmp_path: Path) -> None:
    root = fake_root(tmp_path, profiles="composer-default (enforce)\n/usr/bin/man (enforce)\n"
                                        "a name with spaces (complain)\n")
    assert apparmor.loaded_profiles(root) == {"composer-default": "enforce",
                                              "/usr/bin/man": "enforce",
                                              "a name with spaces": "complain"}
    assert apparmor.is_loaded("composer-default", root)
    assert not apparmor.is_loaded("docker-default", root)


def test_profile_text_has_dockers_rules(tmp_path: Path) -> None:
    for rel in ("abi/3.0", "tunables/global", "abstractions/base"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    text = apparmor.profile_text(profiles_dir=str(tmp_path))
    lines = [ln.strip() for ln in text.splitlines()]
    assert 'profile "composer-default" flags=(attach_disconnected,mediate_deleted) {' in lines
    for rule in ("abi <abi/3.0>,", "#include <tunables/global>", "#include <abstractions/base>",
                 "network,", "deny network alg,", "capability,", "file,", "umount,",
                 "deny mount,", "signal (receive) peer=unconfined,",
                 'signal (send,receive) peer="composer-default",',
                 'ptrace (trace,tracedby,read,readby) peer="composer-default",',
                 "deny @{PROC}/* w,", "deny @{PROC}/sysrq-trigger rwklx,",
                 "deny @{PROC}/kcore rwklx,", "deny @{PROC}/sys/[^k]** w,",
                 "deny /sys/firmware/** rwklx,", "deny /sys/kernel/security/** rwklx,",
                 "deny /sys/fs/cg[^r]*/** wklx,"):
        assert rule in lines, rule
    assert text.count("{") == text.count("}")
    # without the apparmor package's files: a self-contained profile
    bare = apparmor.profile_text(profiles_dir=str(tmp_path / "none"), daemon="composerd")
    assert "@{PROC}=/proc/" in bare and "#include" not in bare and "abi <" not in bare
    assert 'signal (receive) peer="composerd",' in bare


def test_ensure_default_keeps_a_loaded_profile(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_root(tmp_path / "root", profiles="composer-default (enforce)\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "composer-default").write_text(apparmor.profile_text(daemon=apparmor.own_label()))
    monkeypatch.setattr(apparmor, "load", lambda text, path: pytest.fail("reloaded"))
    apparmor.ensure_default(state, root)
    loads: list[Path] = []
    monkeypatch.setattr(apparmor, "load", lambda text, path: loads.append(path))
    (state / "composer-default").write_text("an older text")
    apparmor.ensure_default(state, root)
    assert loads == [state / "composer-default"]


def test_load_without_the_parser_is_one_clear_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apparmor, "parser", lambda: None)
    with pytest.raises(apparmor.AppArmorError, match="apparmor_parser is missing: install the "
                                                     "apparmor package"):
        apparmor.load("profile x {}", tmp_path / "x")
