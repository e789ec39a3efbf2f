from runtime.network.files import hosts_file, resolv_conf

HOST = "# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch corp.example\noptions edns0\n"


def test_bridge_mode_uses_first_gateway_only() -> None:
    text = resolv_conf(["10.200.0.1", "10.200.1.1"], dns=["9.9.9.9"], host_resolv_conf=HOST)
    assert text == "nameserver 10.200.0.1\nsearch corp.example\noptions edns0\n"


def test_own_search_and_options_win() -> None:
    text = resolv_conf(["10.200.0.1"], dns_search=["a.test", "b.test"], dns_opt=["ndots:2"], host_resolv_conf=HOST)
    assert "search a.test b.test\n" in text and "options ndots:2\n" in text and "corp" not in text


def test_none_mode_drops_loopback_servers_host_mode_keeps_them() -> None:
    assert resolv_conf([], host_resolv_conf=HOST).splitlines()[0] == "nameserver 10.255.255.53"
    assert "nameserver 127.0.0.53" in resolv_conf([], host_resolv_conf=HOST, host_mode=True)
    assert resolv_conf([], dns=["1.1.1.1"], host_resolv_conf=HOST).startswith("nameserver 1.1.1.1\n")


def test_hosts_file() -> None:
    text = hosts_file(
        "web",
        ["10.200.0.2", "10.200.1.2"],
        domainname="example.org",
        extra_hosts=[("db.local", "10.9.9.9"), ("host.docker.internal", "host-gateway")],
        host_gateway="10.200.0.1",
    )
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "::1\tlocalhost ip6-localhost ip6-loopback" in lines
    assert "10.9.9.9\tdb.local" in lines
    assert "10.200.0.1\thost.docker.internal" in lines
    assert lines[-2:] == ["10.200.0.2\tweb.example.org web", "10.200.1.2\tweb.example.org web"]


def test_hosts_file_without_gateway_skips_host_gateway() -> None:
    text = hosts_file("h", [], extra_hosts=[("x", "host-gateway")])
    assert "\tx" not in text and text.endswith("ff02::2\tip6-allrouters\n")
