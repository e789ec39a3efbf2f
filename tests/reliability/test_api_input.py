"""Malformed requests to composerd over its socket get a 4xx answer and change nothing.

Bad JSON, wrong types, unknown fields, unknown ids, oversize bodies, and path traversal in
the names of containers, volumes, networks and images: every answer is 4xx (never 5xx, never
a dropped connection) and the test dir (state root and run root) lists exactly as before.
Names that reach the file system cannot leave the state root.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.network.names import bridge_name
from tests.leaks import network_state, state_listing
from tests.reliability import rawhttp
from tests.reliability.conftest import Rig
from tests.reliability.figures import record

TRAVERSAL = ["../../etc", "..", ".", "../x", "a/../../b", "/etc/passwd", "x/y", "..%2F..%2Fetc",
             "a\x00b", "-rf", ".hidden", " space", "x" * 300, "", "étc", "a\nb", "~root"]
TRAVERSAL_URL = ["..%2F..%2Fetc", "%2e%2e", "%2e%2e%2f%2e%2e%2fetc", "..%252F..%252Fetc",
                 "a%00b", "%2Fetc%2Fpasswd", "x" * 300, "-rf", ".hidden", "%20space"]


def _listing(rig: Rig) -> list[str]:
    # the daemon's log may grow, and the CLI keeps its stack cache (run/cli-cache: `ps` fills
    # it); everything else must stay byte-for-byte the same size
    return [line for line in state_listing(rig.base)
            if "/composerd.log " not in line and "/run/cli-cache" not in line]


def _cases(cid: str) -> list[tuple[str, str, bytes | None]]:
    spec = {"name": "ok", "image": "busybox"}
    cases: list[tuple[str, str, bytes | None]] = [
        # bad JSON and wrong shapes
        ("POST", "/containers/create", b"{not json"),
        ("POST", "/containers/create", b"\xff\xfe\x00"),
        ("POST", "/containers/create", b""),
        ("POST", "/containers/create", b"[]"),
        ("POST", "/containers/create", b"null"),
        ("POST", "/containers/create", b'"busybox"'),
        ("POST", "/containers/create", b"[" * 100_000 + b"]" * 100_000),  # deep nesting
        ("POST", "/containers/create", b'{"name": 1e999, "image": "busybox"}'),
        ("POST", "/containers/create", json.dumps({"name": 5, "image": "busybox"}).encode()),
        ("POST", "/containers/create", json.dumps({"name": "ok"}).encode()),  # image missing
        ("POST", "/containers/create", json.dumps({**spec, "bogus": 1}).encode()),
        ("POST", "/containers/create", json.dumps({**spec, "command": "not a list"}).encode()),
        ("POST", "/containers/create", json.dumps({**spec, "mounts": [{"type": "volume",
                  "target": "/d", "source": "../../etc"}]}).encode()),
        ("POST", "/containers/create", json.dumps({**spec, "mounts": [{"type": "volume",
                  "target": "/d", "source": "a/b"}]}).encode()),
        ("POST", "/containers/create", json.dumps({**spec, "mounts": [{"type": "nfs",
                  "target": "/d"}]}).encode()),
        ("POST", "/containers/create", json.dumps({**spec, "mounts": "x"}).encode()),
        ("POST", "/containers/create", json.dumps({**spec, "image": "../../etc"}).encode()),
        ("POST", "/containers/create", json.dumps({**spec, "image": "nosuchimage:1"}).encode()),
        ("POST", "/containers/create", b'{"name": "ok", "image": "busybox", "env": {"A": 1}}'),
        ("POST", "/containers/create", b'{"name": "ok", "image": "busybox", "labels": [1, 2]}'),
        ("POST", "/containers/create", b"{" + b'"a":1,' * 200_000 + b'"b":2}'),  # > 1 MiB: 413
        ("POST", "/volumes/create", b"{"),
        ("POST", "/volumes/create", b'{"name": ["x"]}'),
        ("POST", "/volumes/create", b'{"labels": {}}'),
        ("POST", "/volumes/create", b'{"name": "v", "labels": {"a": 1}}'),
        ("POST", "/networks/create", b'{"name": "n", "subnet": 10}'),
        ("POST", "/networks/create", b'{"name": "n", "mtu": "big"}'),
        ("POST", "/networks/create", b'{"name": "n", "subnet": "not-a-subnet"}'),
        ("POST", "/networks/create", b'{"name": "n", "driver": "overlay"}'),
        ("POST", f"/containers/{cid}/exec", b'{"argv": "ls"}'),
        ("POST", f"/containers/{cid}/exec", b'{"argv": []}'),
        ("POST", f"/containers/{cid}/exec", b'{"argv": ["true"], "env": []}'),
        ("POST", f"/containers/{cid}/stop?timeout=soon", None),
        ("POST", f"/containers/{cid}/stop?timeout=-1e999", None),
        ("POST", f"/containers/{cid}/kill?signal=SIGNOPE", None),
        ("POST", f"/containers/{cid}/kill?signal=99999", None),
        ("DELETE", f"/containers/{cid}?force=perhaps", None),
        ("GET", f"/containers/{cid}/logs?tail=many", None),
        ("GET", "/containers?all=maybe", None),
        ("GET", "/containers?label=", None),
        # unknown ids
        ("GET", "/containers/0123456789ab/json", None),
        ("POST", "/containers/nosuch/start", None),
        ("POST", "/containers/nosuch/stop", None),
        ("POST", "/containers/nosuch/kill", None),
        ("POST", "/containers/nosuch/wait", None),
        ("POST", "/containers/nosuch/pause", None),
        ("POST", "/containers/nosuch/exec", b'{"argv": ["true"]}'),
        ("GET", "/containers/nosuch/logs", None),
        ("GET", "/containers/nosuch/top", None),
        ("GET", "/containers/nosuch/stats", None),
        ("DELETE", "/containers/nosuch", None),
        ("DELETE", "/volumes/nosuch", None),
        ("DELETE", "/networks/nosuch", None),
        ("GET", "/images/nosuch/json", None),
        ("GET", "/images/nosuch:latest/json", None),
        # unknown endpoints and methods
        ("GET", "/nosuch", None),
        ("PUT", "/containers/create", b"{}"),
        ("DELETE", "/images", None),
    ]
    for name in TRAVERSAL:
        cases += [
            ("POST", "/containers/create", json.dumps({**spec, "name": name}).encode()),
            ("POST", "/volumes/create", json.dumps({"name": name}).encode()),
            ("POST", "/networks/create", json.dumps({"name": name}).encode()),
        ]
    for enc in TRAVERSAL_URL:
        cases += [
            ("GET", f"/containers/{enc}/json", None),
            ("POST", f"/containers/{enc}/start", None),
            ("POST", f"/containers/{enc}/exec", b'{"argv": ["true"]}'),
            ("DELETE", f"/containers/{enc}?force=1&v=1", None),
            ("DELETE", f"/volumes/{enc}?force=1", None),
            ("DELETE", f"/networks/{enc}", None),
            ("GET", f"/images/{enc}/json", None),
            ("GET", f"/images/{enc}/..%2F..%2Fetc/json", None),
        ]
    return cases


def test_malformed_requests_get_4xx_and_change_nothing(rig: Rig) -> None:
    d = rig.project_dir("services:\n  app:\n    image: busybox\n    init: true\n"
                        "    command: sleep 600\n    volumes: [data:/data]\nvolumes:\n  data: {}\n",
                        name="relapi")
    rig.composer("up", "-d", cwd=d)
    cid = rig.ps(d)[0]["ID"]
    sock = str(rig.env.run / "composer.sock")
    before = _listing(rig)
    bad: list[str] = []
    statuses: dict[int, int] = {}
    cases = _cases(cid)
    for method, path, body in cases:
        reply = rawhttp.request(sock, method, path, body)
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
        what = f"{method} {path[:80]} {(body or b'')[:80]!r}"
        if not 400 <= reply.status < 500:
            bad.append(f"{what} -> {reply.status} {reply.body[:200]!r}")
        elif reply.status != 405 and reply.body:
            msg = reply.json().get("message", "")
            if not msg or "internal error" in msg:
                bad.append(f"{what} -> {reply.status} without a clear message: {msg!r}")
        now = _listing(rig)
        if now != before:
            diff = sorted(set(now) ^ set(before))
            bad.append(f"{what} changed the state root: {diff[:5]}")
            before = now
    # raw protocol garbage: an HTTP 4xx, and the daemon keeps serving
    for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                b"POST /containers/create HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        reply = rawhttp.send_raw(sock, raw)
        if not 400 <= reply.status < 500:
            bad.append(f"raw {raw[:30]!r} -> {reply.status}")
    assert rawhttp.request(sock, "GET", "/_ping").status == 200
    assert rig.ps(d)[0]["State"] == "running"
    assert _listing(rig) == before
    record("api_malformed_requests", requests=len(cases) + 3, statuses=statuses, bad=len(bad))
    rig.composer("down", "-v", cwd=d)
    assert not bad, "\n".join(bad)


NON_STRINGS = st.none() | st.booleans() | st.integers() | st.floats() | st.lists(st.integers(), max_size=3)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=10)
FIELDS = st.sampled_from(["image", "command", "entrypoint", "env", "labels", "mounts", "networks",
                          "ports", "subnet", "driver", "argv", "user", "workdir", "x"])


@st.composite
def bad_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A body whose `name` is never acceptable, plus random other fields."""
    body = draw(st.dictionaries(FIELDS, JSON, max_size=4))
    body["name"] = draw(NON_STRINGS | st.sampled_from(TRAVERSAL))
    if draw(st.booleans()):
        body["image"] = "busybox"
    return body


def test_random_bodies_get_4xx(rig: Rig) -> None:
    rig.start_daemon()
    sock = str(rig.env.run / "composer.sock")
    before = _listing(rig)
    seen: list[int] = []

    @settings(max_examples=int(os.environ.get("COMPOSER_RELIABILITY_API_EXAMPLES", "400")),
              deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["/containers/create", "/volumes/create", "/networks/create"]),
           bad_bodies() | JSON)
    def check(path: str, body: Any) -> None:
        reply = rawhttp.request(sock, "POST", path, json.dumps(body).encode())
        seen.append(reply.status)
        assert 400 <= reply.status < 500, (path, body, reply)
        now = _listing(rig)
        assert now == before, (path, body, reply, sorted(set(now) ^ set(before))[:5])

    check()
    assert _listing(rig) == before
    record("api_random_bodies", requests=len(seen))


def test_names_from_stack_files_cannot_escape(rig: Rig) -> None:
    """Traversal through the CLI: container_name, volume/network names, project name."""
    cases = {
        "cname": "services:\n  a:\n    image: busybox\n    container_name: ../../etc\n",
        "vname": "services:\n  a:\n    image: busybox\n    volumes: [v:/v]\nvolumes:\n  v:\n    name: ../../etc\n",
        "nname": "services:\n  a:\n    image: busybox\n    networks: [n]\nnetworks:\n  n:\n    name: ../../etc\n",
    }
    rig.start_daemon()

    def listing() -> list[str]:  # `up` may make the busybox image before it fails: not a leak
        store = (f"{rig.env.root}/images/", f"{rig.env.root}/layers/", f"{rig.env.root}/networks")
        return [x for x in state_listing(rig.env.root) if not x.startswith(store)]

    before = listing()
    outside = sorted(os.listdir(rig.base))
    for key, text in cases.items():
        d = rig.project_dir(text, name=f"relesc{key}")
        p = rig.composer("up", "-d", cwd=d, check=False)
        assert p.returncode != 0, f"{key}: accepted\n{p.stdout}{p.stderr}"
        assert "Traceback" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) <= 3, p.stderr
        rig.composer("down", "-v", cwd=d, check=False)
    d = rig.project_dir("services:\n  a:\n    image: busybox\n", name="relescproject")
    p = rig.composer("-p", "../../etc", "up", "-d", cwd=d, check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert "project name" in p.stderr, p.stderr
    assert not network_state(rig.env.root).get("networks"), network_state(rig.env.root)
    assert listing() == before
    assert sorted(x for x in os.listdir(rig.base) if x != "stacks") == [x for x in outside if x != "stacks"]
    assert not Path(rig.base, "etc").exists() and not Path(rig.env.root.parent.parent, "etc").exists()


def test_deleting_an_unknown_network_touches_no_host_link(rig: Rig) -> None:
    """DELETE /networks/<name> for a network this engine does not know must not remove a
    link that merely has the name this engine *would* give that network's bridge (another
    state root's, or anyone's)."""
    rig.start_daemon()
    name = f"relother{os.getpid() % 10000}_net"
    link = bridge_name(name)
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
    try:
        reply = rawhttp.request(str(rig.env.run / "composer.sock"), "DELETE", f"/networks/{name}")
        still_there = Path("/sys/class/net", link).exists()
    finally:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    assert still_there, f"DELETE /networks/{name} ({reply.status}) deleted host link {link}"
    assert reply.status == 404, reply
