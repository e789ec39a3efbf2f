from __future__ import annotations

import pytest

from composer.errors import SpecError
from composer.spec import PortSpec, VolumeMount
from composer.spec.mounts import parse_tmpfs_entry
from composer.spec.ports import parse_expose
from composer.spec.where import Where

W = Where("compose.yaml", "services.web.ports[0]")


def ports(raw: object) -> list[tuple[object, ...]]:
    return [(p.host_ip, p.published, p.target, p.protocol) for p in PortSpec.parse(raw, W)]


@pytest.mark.parametrize(("raw", "expected"), [
    (80, [("", None, 80, "tcp")]),
    ("80", [("", None, 80, "tcp")]),
    ("8080:80", [("", 8080, 80, "tcp")]),
    ("53:53/udp", [("", 53, 53, "udp")]),
    ("127.0.0.1:8080:80", [("127.0.0.1", 8080, 80, "tcp")]),
    ("127.0.0.1::80", [("127.0.0.1", None, 80, "tcp")]),
    ("[::1]:8080:80", [("::1", 8080, 80, "tcp")]),
    ("9000-9001:80-81", [("", 9000, 80, "tcp"), ("", 9001, 81, "tcp")]),
    ("3000-3002", [("", None, 3000, "tcp"), ("", None, 3001, "tcp"), ("", None, 3002, "tcp")]),
    ("5000:5000/SCTP", [("", 5000, 5000, "sctp")]),
    ({"target": 80, "published": "8080", "host_ip": "0.0.0.0", "protocol": "udp"}, [("0.0.0.0", 8080, 80, "udp")]),
    ({"target": "80"}, [("", None, 80, "tcp")]),
])
def test_port_syntaxes(raw: object, expected: list[tuple[object, ...]]) -> None:
    assert ports(raw) == expected


@pytest.mark.parametrize("raw", [
    "6005-6015:80",
    {"target": 80, "published": "6005-6015"},
])
def test_host_port_range_for_one_container_port(raw: object) -> None:
    """Docker binds the first free host port of the range: one PortSpec, not one per port."""
    (p,) = PortSpec.parse(raw, W)
    assert (p.published, p.published_end, p.target, p.protocol) == (6005, 6015, 80, "tcp")
    assert p.published_text == "6005-6015"


def test_host_port_range_keeps_ip_protocol_and_collapses_one_port() -> None:
    (p,) = PortSpec.parse("127.0.0.1:6005-6015:53/udp", W)
    assert (p.host_ip, p.published, p.published_end, p.target, p.protocol) == (
        "127.0.0.1", 6005, 6015, 53, "udp")
    (one,) = PortSpec.parse("8000-8000:80", W)
    assert (one.published, one.published_end, one.published_text) == (8000, None, "8000")
    (long_one,) = PortSpec.parse({"target": 80, "published": "8000-8000"}, W)
    assert long_one == one
    assert [p.published_end for p in PortSpec.parse("9000-9001:80-81", W)] == [None, None]


def test_long_port_keeps_mode_and_name() -> None:
    (p,) = PortSpec.parse({"target": 80, "mode": "host", "name": "web", "app_protocol": "http"}, W)
    assert (p.mode, p.name, p.app_protocol) == ("host", "web", "http")


@pytest.mark.parametrize(("raw", "message"), [
    ("80:x", 'invalid port "80:x"'),
    ("0", "invalid port 0 (must be 1-65535)"),
    ("70000", "invalid port 70000"),
    ("80/icmp", 'invalid protocol "icmp"'),
    ("1:2:3:4", "invalid port"),
    ("9000-9002:80-81", "ranges differ in length"),
    ("6005-6015:80-81", "ranges differ in length"),
    ("6015-6005:80", "end before start"),
    ({"target": 80, "published": "8010-8000"}, "end before start"),
    ({"target": 80, "published": "8000-x"}, 'invalid port "8000-x"'),
    ("90-80", "end before start"),
    ({"published": 80}, "missing key target"),
    ({"target": 80, "publish": 80}, 'unknown key (did you mean "published"?)'),
    ({"target": 80, "mode": "x"}, "invalid port mode"),
    (True, "expected a port"),
    (1.5, "use an integer"),
])
def test_port_errors(raw: object, message: str) -> None:
    with pytest.raises(SpecError) as err:
        PortSpec.parse(raw, W)
    assert message in str(err.value)
    assert str(err.value).startswith("compose.yaml: services.web.ports[0]")


def test_expose() -> None:
    assert parse_expose([3306, "5000-5002/udp"], W) == ("3306", "5000-5002/udp")
    with pytest.raises(SpecError, match="invalid protocol"):
        parse_expose(["80/xx"], W)


BASE = "/proj"
V = Where("compose.yaml", "services.web.volumes[0]")


def mount(raw: object) -> VolumeMount:
    return VolumeMount.parse(raw, V, BASE)


def test_short_volume_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/me")
    assert mount("data:/var/lib/data") == VolumeMount("volume", "/var/lib/data", "data")
    assert mount("/var/cache") == VolumeMount("volume", "/var/cache")
    assert mount("/var/cache:ro") == VolumeMount("volume", "/var/cache", read_only=True)
    assert mount("./src:/app:ro") == VolumeMount("bind", "/app", "/proj/src", read_only=True, create_host_path=True)
    assert mount("../up:/up").source == "/up"
    assert mount("~/cfg:/cfg").source == "/home/me/cfg"
    assert mount("/abs:/abs:rw,z").selinux == "z"
    assert mount("/abs:/abs:rshared").propagation == "rshared"
    assert mount("data:/d:nocopy").nocopy is True
    assert mount(".:/code").source == "/proj"


def test_long_volume_forms() -> None:
    m = mount({"type": "bind", "source": "./x", "target": "/x", "read_only": True,
               "bind": {"create_host_path": True, "propagation": "slave"}})
    assert m == VolumeMount("bind", "/x", "/proj/x", read_only=True, create_host_path=True, propagation="slave")
    m = mount({"type": "volume", "source": "db", "target": "/db", "volume": {"nocopy": True, "subpath": "a"}})
    assert (m.source, m.nocopy, m.subpath) == ("db", True, "a")
    m = mount({"type": "tmpfs", "target": "/t", "tmpfs": {"size": "64m", "mode": "1777"}})
    assert (m.tmpfs_size, m.tmpfs_mode) == (64 << 20, 0o1777)
    assert mount({"type": "tmpfs", "target": "/t", "tmpfs": {"size": 1000, "mode": 0o700}}).tmpfs_mode == 0o700
    assert mount({"type": "volume", "target": "/anon"}).source is None


@pytest.mark.parametrize(("raw", "message"), [
    ("data:relative", 'the target "relative" must be an absolute path'),
    ("a:/b:c:d", "invalid volume"),
    ("/a:/b:bogus", 'unknown mode "bogus"'),
    ("/a:/b:ro,rw", "both ro and rw"),
    ({"type": "bind", "target": "/x"}, "a bind mount needs a source path"),
    ({"type": "nfs", "target": "/x"}, 'invalid mount type "nfs"'),
    ({"type": "image", "target": "/x"}, "an image mount needs the image as source"),
    ({"type": "npipe", "source": "a", "target": "/x"}, 'not supported: mount type "npipe"'),
    ({"source": "x", "target": "/x"}, "missing key type"),
    ({"type": "volume", "target": "/x", "bind": {}}, "bind options on a volume mount"),
    ({"type": "volume", "target": "/x", "volume": {"nocpy": True}}, 'unknown key (did you mean "nocopy"?)'),
    ({"type": "tmpfs", "source": "x", "target": "/x"}, "a tmpfs mount has no source"),
    ({"type": "tmpfs", "target": "/x", "tmpfs": {"mode": "9z"}}, "invalid file mode"),
    (5, "expected"),
])
def test_volume_errors(raw: object, message: str) -> None:
    with pytest.raises(SpecError) as err:
        mount(raw)
    assert message in str(err.value)
    assert str(err.value).startswith("compose.yaml: services.web.volumes[0]")


def test_tmpfs_entries() -> None:
    m = parse_tmpfs_entry("/run:size=64m,mode=1770", V)
    assert (m.type, m.target, m.tmpfs_size, m.tmpfs_mode) == ("tmpfs", "/run", 64 << 20, 0o1770)
    with pytest.raises(SpecError, match="unknown tmpfs option"):
        parse_tmpfs_entry("/run:weird", V)
    with pytest.raises(SpecError, match="absolute path"):
        parse_tmpfs_entry("run", V)
