"""User namespace maps, config checks and the launch order with idmapped layers (no root)."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from runtime.launchcfg import user_namespace
from runtime.process import init as seq
from runtime.process.config import DEFAULT_NAMESPACES, LaunchConfig, check
from runtime.process.syscalls import RecordingSyscalls
from runtime.process.userns import IdMap, default_maps, map_text, read_subid, to_host
from runtime.types import ContainerSpec

MAP = (IdMap(0, 100000, 65536),)


def cfg(**kw: object) -> LaunchConfig:
    base: dict[str, object] = dict(id="c1", argv=("sh",), state_dir="/s", mergeddir="/m",
                                   lowerdirs=("/l2", "/l1"), upperdir="/u", workdir="/w",
                                   namespaces=("user", *DEFAULT_NAMESPACES),
                                   uid_map=MAP, gid_map=MAP)
    base.update(kw)
    return LaunchConfig(**base)  # type: ignore[arg-type]


def test_subid_file_and_default(tmp_path: Path) -> None:
    sub = tmp_path / "subuid"
    sub.write_text("alice:100000:65536\ncomposer:231072:65536\n")
    assert read_subid(str(sub)) == IdMap(0, 231072, 65536)
    assert read_subid(str(tmp_path / "missing")) is None
    uid, gid = default_maps(str(sub), str(tmp_path / "missing"))
    assert uid == (IdMap(0, 231072, 65536),) and gid == MAP


def test_map_text_and_to_host() -> None:
    maps = (IdMap(0, 100000, 1000), IdMap(1000, 300000, 10))
    assert map_text(maps) == "0 100000 1000\n1000 300000 10\n"
    assert to_host(maps, 0) == 100000 and to_host(maps, 1005) == 300005
    with pytest.raises(InvalidArgument, match="not mapped"):
        to_host(maps, 1010)


def test_check_userns_config() -> None:
    check(cfg())
    with pytest.raises(InvalidArgument, match="uid_map"):
        check(cfg(uid_map=()))
    with pytest.raises(InvalidArgument, match="not mapped"):
        check(cfg(gid_map=(IdMap(1, 100000, 10),)))
    with pytest.raises(InvalidArgument, match="own net namespace"):
        check(cfg(namespaces=("user", "mnt", "uts", "ipc", "pid", "cgroup")))
    with pytest.raises(InvalidArgument, match="joining"):
        check(cfg(join_namespaces={"user": "/proc/1/ns/user"}))


def test_userns_mode_to_launch_config() -> None:
    def spec(mode: str | None, privileged: bool = False) -> ContainerSpec:
        return ContainerSpec(name="p-w-1", image="b", userns_mode=mode, privileged=privileged)

    assert user_namespace(spec(None), DEFAULT_NAMESPACES) == (DEFAULT_NAMESPACES, (), ())
    assert user_namespace(spec("host"), DEFAULT_NAMESPACES)[0] == DEFAULT_NAMESPACES
    ns, uid, gid = user_namespace(spec("private"), DEFAULT_NAMESPACES)
    assert ns[0] == "user" and uid and gid and to_host(uid, 0) > 0
    with pytest.raises(InvalidArgument, match="userns_mode"):
        user_namespace(spec("container:x"), DEFAULT_NAMESPACES)
    with pytest.raises(InvalidArgument, match="privileged"):
        user_namespace(spec("private", privileged=True), DEFAULT_NAMESPACES)


def test_idmapped_layers_cover_lowerdirs_before_the_overlay() -> None:
    sc = RecordingSyscalls(files={"/etc/passwd": "root:x:0:0::/root:/bin/sh\n",
                                  "/etc/group": "root:x:0:\n"})
    seq.setup_container(cfg(), sc, idmapped=(7, 8))
    moves = [c for c in sc.calls if c[0] == "move_mount"]
    assert moves == [("move_mount", 7, "/l2"), ("move_mount", 8, "/l1")]
    overlay = sc.index("mount", "overlay", "/m", "overlay")
    assert sc.calls.index(moves[-1]) < overlay
    assert ("close", 7) in sc.calls and ("close", 8) in sc.calls
    # no mknod in a user namespace: the host's device nodes are bound instead
    assert "mknod" not in sc.names()
    assert ("mount", "/dev/null", "/m/dev/null", None, 4096, None) in sc.calls
