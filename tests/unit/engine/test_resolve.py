"""What a container runs, from its spec over the image config (Docker's rules), without root."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.containers import ContainerRecord, ContainerTable, Resolved
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.launchcfg import mount_points, network_namespaces, no_new_privs
from runtime.resolve import merge_env, resolve_argv
from runtime.types import ContainerSpec, Mount


@pytest.mark.parametrize(("spec_ep", "spec_cmd", "img_ep", "img_cmd", "argv"), [
    (None, None, None, ["sh"], ["sh"]),
    (None, ["echo", "hi"], None, ["sh"], ["echo", "hi"]),
    (None, None, ["/entry"], ["arg"], ["/entry", "arg"]),
    (None, ["x"], ["/entry"], ["arg"], ["/entry", "x"]),
    (["/new"], None, ["/entry"], ["arg"], ["/new"]),  # a new entrypoint drops the image's Cmd
    (["/new"], ["y"], ["/entry"], ["arg"], ["/new", "y"]),
])
def test_entrypoint_and_command(spec_ep, spec_cmd, img_ep, img_cmd, argv) -> None:  # type: ignore[no-untyped-def]
    assert resolve_argv(spec_ep, spec_cmd, img_ep, img_cmd) == argv


def test_no_command_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument, match="no command specified"):
        resolve_argv(None, None, None, None, name="c")


def test_env_merges_over_the_image_and_sets_path_and_hostname() -> None:
    env = merge_env(["A=1", "PATH=/bin"], {"A": "2", "B": "x=y"}, "h1")
    assert env == ["A=2", "PATH=/bin", "B=x=y", "HOSTNAME=h1"]
    assert any(e.startswith("PATH=/usr/local/sbin") for e in merge_env([], {}, "h"))


def test_network_modes_map_to_namespaces() -> None:
    spec = ContainerSpec(name="c", image="i")
    assert "net" in network_namespaces(spec, None)[0]
    host = network_namespaces(ContainerSpec(name="c", image="i", network_mode="host"), None)
    assert "net" not in host[0] and host[1] == {}
    joined = network_namespaces(ContainerSpec(name="c", image="i", network_mode="container:x"), 42)
    assert "net" not in joined[0] and joined[1] == {"net": "/proc/42/ns/net"}
    with pytest.raises(InvalidArgument, match="not running"):
        network_namespaces(ContainerSpec(name="c", image="i", network_mode="container:x"), None)
    with pytest.raises(InvalidArgument, match="unknown network mode"):
        network_namespaces(ContainerSpec(name="c", image="i", network_mode="bogus"), None)


def test_mounts_resolve_binds_volumes_and_tmpfs(tmp_path: Path) -> None:
    src = tmp_path / "missing"
    spec = ContainerSpec(name="c", image="i", mounts=(
        Mount("bind", "/a", str(src)),
        Mount("volume", "/b", "vol"),
        Mount("tmpfs", "/c", tmpfs_size=1024, tmpfs_mode=0o700),
    ))
    mps = mount_points(spec, (), lambda m: f"/vols/{m.source}")
    assert src.is_dir()  # short syntax creates a missing host dir, as Docker
    assert [(m.type, m.target, m.source) for m in mps] == [
        ("bind", "/a", str(src)), ("bind", "/b", "/vols/vol"), ("tmpfs", "/c", "")]
    assert mps[2].options == ("size=1024", "mode=700")
    strict = ContainerSpec(name="c", image="i", mounts=(
        Mount("bind", "/a", str(tmp_path / "nope"), create_host_path=False),))
    with pytest.raises(InvalidArgument, match="does not exist"):
        mount_points(strict, (), lambda m: "")
    with pytest.raises(InvalidArgument, match="absolute"):
        mount_points(ContainerSpec(name="c", image="i", mounts=(Mount("bind", "rel", "/x"),)), (),
                     lambda m: "")


def test_no_new_privileges_security_opt() -> None:
    assert no_new_privs(ContainerSpec(name="c", image="i", security_opt=("no-new-privileges:true",)))
    assert no_new_privs(ContainerSpec(name="c", image="i", security_opt=("no-new-privileges",)))
    assert not no_new_privs(ContainerSpec(name="c", image="i"))


def _record(tmp_path: Path, name: str, cid: str) -> ContainerRecord:
    d = tmp_path / cid
    d.mkdir()
    res = Resolved("sha256:x", ("sh",), (), "/", "", "h", "SIGTERM", ())
    return ContainerRecord(cid, ContainerSpec(name=name, image="i"), res, 1.0, d)


def test_container_table_persists_and_resolves_names_and_prefixes(tmp_path: Path) -> None:
    t = ContainerTable(tmp_path)
    rec = _record(tmp_path, "web", "abcdef" + "0" * 58)
    rec.save_config()
    rec.update(state="running", pid=7)
    t.add(rec)
    with pytest.raises(Conflict):
        t.add(_record(tmp_path, "web", "f" * 64))
    again = ContainerTable(tmp_path)
    again.load_all()
    assert again.get("web").run.pid == 7
    assert again.get("abcd").id == rec.id
    with pytest.raises(NotFound):
        again.get("nope")


def test_init_true_puts_a_static_init_in_front_when_the_host_has_one(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from runtime import launchcfg

    spec = ContainerSpec(name="c", image="i", init=True)
    monkeypatch.setattr(launchcfg, "static_init", lambda: "/usr/bin/tini-static")
    argv, mounts, flag = launchcfg.with_init(spec, ("sleep", "1"), ())
    assert argv == ("/sbin/docker-init", "--", "sleep", "1") and flag is False
    assert mounts[-1].source == "/usr/bin/tini-static" and mounts[-1].read_only
    monkeypatch.setattr(launchcfg, "static_init", lambda: None)
    assert launchcfg.with_init(spec, ("x",), ()) == (("x",), (), True)  # the Python reaper
    plain = ContainerSpec(name="c", image="i")
    assert launchcfg.with_init(plain, ("x",), ()) == (("x",), (), False)
