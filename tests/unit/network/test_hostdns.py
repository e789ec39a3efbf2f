"""Which resolv.conf containers get their servers from (systemd-resolved aware, as Docker)."""
from __future__ import annotations

import os
from pathlib import Path

from runtime.network.hostdns import HostResolvConf, choose, nameservers, only_resolved_stub

STUB = "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
UPSTREAM = "# This is /run/systemd/resolve/resolv.conf\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch lan\n"
PLAIN = "nameserver 192.0.2.1\nnameserver 192.0.2.2\n"


def test_nameservers_in_order_comments_skipped() -> None:
    text = "# nameserver 1.2.3.4\nnameserver 1.1.1.1\nsearch a\n  nameserver   10.0.0.1  \nnameserver\n"
    assert nameservers(text) == ["1.1.1.1", "10.0.0.1"]


def test_only_resolved_stub() -> None:
    assert only_resolved_stub(STUB)
    assert only_resolved_stub("nameserver 127.0.0.54\n")  # resolved's proxy-only stub
    assert only_resolved_stub("nameserver 127.0.0.53\nnameserver 127.0.0.54\n")
    assert not only_resolved_stub("nameserver 127.0.0.53\nnameserver 192.0.2.1\n")  # a real one too
    assert not only_resolved_stub("nameserver 127.0.0.1\n")  # dnsmasq & co: no resolved file to use
    assert not only_resolved_stub("")


def test_choose() -> None:
    assert choose(STUB, UPSTREAM) == UPSTREAM  # resolved: its upstream servers
    assert choose(STUB, None) == STUB  # resolved's file missing: the host's (the embedded
    # server forwards from the host's namespace, where the stub answers)
    assert choose(STUB, "# no servers configured\nsearch lan\n") == STUB  # resolved has none
    assert choose(PLAIN, UPSTREAM) == PLAIN  # the host names real servers: those
    assert choose("nameserver 127.0.0.53\nnameserver 192.0.2.1\n", UPSTREAM).endswith("192.0.2.1\n")


def test_reader_follows_the_stub_link_and_rereads_on_change(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "stub-resolv.conf").write_text(STUB)
    (run / "resolv.conf").write_text(UPSTREAM)
    etc = tmp_path / "resolv.conf"
    etc.symlink_to(run / "stub-resolv.conf")  # as Debian's systemd-resolved package links it
    hr = HostResolvConf(host=etc, resolved=run / "resolv.conf")
    assert hr.host_text() == STUB
    assert hr.upstreams() == ["192.0.2.53", "2001:db8::53"]
    # resolved rewrites its file (the network changed): seen at the next use
    new = run / "resolv.conf.new"
    new.write_text("nameserver 198.51.100.7\n")
    os.replace(new, run / "resolv.conf")
    assert hr.upstreams() == ["198.51.100.7"]
    # resolved goes away (file gone) or the host is reconfigured to plain servers
    (run / "resolv.conf").unlink()
    assert hr.upstreams() == ["127.0.0.53"]
    etc.unlink()
    etc.write_text(PLAIN)
    assert hr.upstreams() == ["192.0.2.1", "192.0.2.2"]
    assert hr.upstream_text() == PLAIN


def test_reader_without_any_file(tmp_path: Path) -> None:
    hr = HostResolvConf(host=tmp_path / "none", resolved=tmp_path / "none2")
    assert hr.host_text() == "" and hr.upstreams() == []
