"""Service keys Compose accepts that were dropped or refused (issue 14): security_opt,
env_file format raw, label_file, the limit conflicts, replica bounds, ipc/pid/uts/cgroup,
mac_address and the endpoint keys, IPAM, volume driver_opts."""
from __future__ import annotations

import pytest

from composer.convert import container_spec, network_spec, volume_spec
from composer.errors import SpecError
from composer.graph import build_graph
from composer.spec.render import render_stack
from runtime.types import NetworkAttachment

from .conftest import Loader


def _error(load: Loader, text: str, **kw: object) -> str:
    with pytest.raises(SpecError) as e:
        load(text, **kw)
    return str(e.value)


def test_security_opt_spellings_docker_accepts(load: Loader, project) -> None:  # type: ignore[no-untyped-def]
    opts = ["no-new-privileges", "no-new-privileges:true", "seccomp=unconfined", "seccomp:builtin",
            "seccomp=profiles/strict.json", "apparmor=unconfined", "apparmor:my-profile",
            "label=disable", "label:type:svirt_apache_t", "no-new-privileges=1"]
    stack = load(f"services: {{web: {{image: x, security_opt: {opts}}}}}")
    assert stack.services["web"].security_opt == (
        "no-new-privileges", "no-new-privileges:true", "seccomp=unconfined", "seccomp:builtin",
        f"seccomp={project}/profiles/strict.json",  # read from the project dir, as Compose
        "apparmor=unconfined", "apparmor:my-profile", "label=disable", "label:type:svirt_apache_t",
        "no-new-privileges=true")
    assert any("label:type:svirt_apache_t: SELinux labels are not applied" in w for w in stack.warnings)
    assert container_spec(stack, "web", 1, labels={}).security_opt == stack.services["web"].security_opt


@pytest.mark.parametrize(("opt", "message"), [
    ("no-new-privilege", 'invalid security_opt "no-new-privilege"'),
    ("no-new-privileges=maybe", "no-new-privileges takes true or false"),
    ("seccomp=", "name a profile file or unconfined"),
    ("label=bogus", "use label=disable or label=user|role|type|level:VALUE"),
    ("systempaths=unconfined", "not supported yet: security_opt systempaths=unconfined"),
    ("writable-cgroups=true", "not supported yet: security_opt writable-cgroups"),
    ("mask=/proc/kcore", 'invalid security_opt "mask=/proc/kcore"'),
])
def test_bogus_security_opt_is_an_error(load: Loader, opt: str, message: str) -> None:
    text = _error(load, f"services: {{web: {{image: x, security_opt: ['{opt}']}}}}")
    assert text.startswith("compose.yaml: services.web.security_opt[0]: ") and message in text, text


def test_env_file_raw_format_and_label_file(load: Loader, write) -> None:  # type: ignore[no-untyped-def]
    write(".env.raw", '  A="quoted"\nB=$HOME x  \n# comment\nC\n')
    write("bad.raw", "export D=1\n")
    write("labels.env", 'team=web\nquoted="v w"\nfrom=${WHO}\n')
    write("more.labels", "team=ops\n")
    stack = load("""
services:
  web:
    image: x
    env_file: [{path: .env.raw, format: raw}]
    label_file: [labels.env, more.labels]
    labels: {quoted: from-labels}
""", environ={"C": "from-environ", "WHO": "me", "HOME": "/root"})
    web = stack.services["web"]
    # raw: values as written (quotes, $, trailing spaces kept), KEY alone from the environment
    assert web.environment == {"A": '"quoted"', "B": "$HOME x  ", "C": "from-environ"}
    # label files in order, then labels win; the .env syntax (quotes, ${VAR})
    assert web.labels == {"team": "ops", "quoted": "from-labels", "from": "me"}
    out = render_stack(stack)["services"]["web"]
    assert out["env_file"][0]["format"] == "raw" and len(out["label_file"]) == 2
    assert "not found" in _error(load, "services: {web: {image: x, label_file: nope.labels}}")
    assert 'bad.raw: line 1: variable "export D" contains whitespace' in _error(
        load, "services: {web: {image: x, env_file: [{path: bad.raw, format: raw}]}}")
    assert 'unsupported env_file format "yaml"' in _error(
        load, "services: {web: {image: x, env_file: [{path: a, format: yaml}]}}")


@pytest.mark.parametrize(("keys", "message"), [
    ("cpus: 1, deploy: {resources: {limits: {cpus: '2'}}}",
     "services.web.cpus: can't set distinct values on cpus (1.0) and deploy.resources.limits.cpus (2.0)"),
    ("mem_limit: 1g, deploy: {resources: {limits: {memory: 2g}}}",
     "services.web.mem_limit: can't set distinct values on mem_limit"),
    ("pids_limit: 10, deploy: {resources: {limits: {pids: 20}}}",
     "services.web.pids_limit: can't set distinct values on pids_limit"),
    ("mem_reservation: 1m, deploy: {resources: {reservations: {memory: 2m}}}",
     "services.web.mem_reservation: can't set distinct values on mem_reservation"),
    ("container_name: one, deploy: {replicas: 2}",
     "services.web.container_name: can't set container_name and deploy.replicas 2"),
    ("container_name: one, scale: 3", "can't set container_name and scale 3"),
    ("deploy: {replicas: 100000}",
     "services.web.deploy.replicas: 100000 replicas is more than the limit of 1000 per service "
     "(set COMPOSER_MAX_REPLICAS to raise it)"),
    ("scale: 5000", "services.web.scale: 5000 replicas is more than the limit"),
])
def test_conflicts_and_bounds_compose_refuses(load: Loader, keys: str, message: str) -> None:
    assert message in _error(load, f"services: {{web: {{image: x, {keys}}}}}")


def test_equal_values_and_a_raised_replica_limit_are_fine(load: Loader) -> None:
    stack = load("services: {web: {image: x, cpus: 1.5, mem_limit: 1g, deploy: {replicas: 2000, "
                 "resources: {limits: {cpus: '1.5', memory: 1g}}}}}",
                 environ={"COMPOSER_MAX_REPLICAS": "5000"})
    assert stack.services["web"].replicas == 2000


def test_namespace_modes_reach_the_container_spec_and_the_graph(load: Loader) -> None:
    stack = load("""
services:
  donor: {image: x, ipc: shareable}
  ipcj: {image: x, ipc: "service:donor", pid: "service:donor"}
  hosty: {image: x, ipc: host, pid: host, uts: host, cgroup: host}
  priv: {image: x, cgroup: private, ipc: "container:other"}
""")
    spec = container_spec(stack, "ipcj", 1, labels={})
    assert (spec.ipc_mode, spec.pid_mode) == (f"container:{stack.name}-donor-1",) * 2
    hosty = container_spec(stack, "hosty", 1, labels={})
    assert (hosty.ipc_mode, hosty.pid_mode, hosty.uts_mode, hosty.cgroupns_mode) == ("host",) * 4
    priv = container_spec(stack, "priv", 1, labels={})
    assert (priv.ipc_mode, priv.cgroupns_mode) == ("container:other", "private")
    assert container_spec(stack, "donor", 1, labels={}).ipc_mode == "shareable"
    deps = build_graph(stack).dependencies("ipcj")
    assert [d.service for d in deps] == ["donor"]
    assert render_stack(stack)["services"]["hosty"]["uts"] == "host"


@pytest.mark.parametrize(("keys", "message"), [
    ("ipc: none", 'not supported: ipc "none"'), ("ipc: other", 'invalid ipc "other"'),
    ("pid: shareable", 'invalid pid "shareable"'), ("uts: private", 'invalid uts "private"'),
    ("cgroup: yes", 'invalid cgroup "yes"'),
    ("uts: host, hostname: h", "services.web.hostname: hostname and uts: host conflict"),
])
def test_namespace_mode_errors(load: Loader, keys: str, message: str) -> None:
    assert message in _error(load, f"services: {{web: {{image: x, {keys}}}}}")


def test_mac_interface_link_local_gw_priority(load: Loader) -> None:
    stack = load("""
services:
  web:
    image: x
    mac_address: 02:AA:bb:cc:dd:01
    networks:
      front: {priority: 10, interface_name: front0, link_local_ips: [169.254.1.1]}
      back: {gw_priority: 3, mac_address: "02-00-00-00-00-09"}
networks: {front: {}, back: {}}
""")
    spec = container_spec(stack, "web", 1, labels={})
    p = stack.name
    assert spec.networks == (
        NetworkAttachment(f"{p}_front", ("web",), priority=10, mac_address="02:aa:bb:cc:dd:01",
                          interface_name="front0", link_local_ips=("169.254.1.1",)),
        NetworkAttachment(f"{p}_back", ("web",), mac_address="02:00:00:00:00:09", gw_priority=3),
    )
    out = render_stack(stack)["services"]["web"]
    assert out["mac_address"] == "02:aa:bb:cc:dd:01"
    assert out["networks"]["front"] == {"interface_name": "front0", "link_local_ips": ["169.254.1.1"],
                                        "priority": 10}


@pytest.mark.parametrize(("text", "message"), [
    ("mac_address: 02:42", 'invalid MAC address "02:42"'),
    ("mac_address: 01:00:5e:00:00:01", "is a multicast address"),
    ("mac_address: 02:00:00:00:00:01, network_mode: host", "mac_address and network_mode host conflict"),
    ("networks: {n: {interface_name: lo}}", 'invalid interface_name "lo"'),
    ("networks: {n: {interface_name: a-very-long-name0}}", "invalid interface_name"),
    ("networks: {n: {link_local_ips: [10.0.0.1]}}", "10.0.0.1 is not a link-local address"),
    ("networks: {n: {link_local_ips: ['fe80::1']}}", "not supported: IPv6 link-local address"),
])
def test_endpoint_key_errors(load: Loader, text: str, message: str) -> None:
    assert message in _error(load, f"services: {{web: {{image: x, {text}}}}}\nnetworks: {{n: {{}}}}")


def test_service_mac_must_agree_with_the_main_networks(load: Loader) -> None:
    stack = load("services: {web: {image: x, mac_address: '02:00:00:00:00:01', networks: "
                 "{n: {mac_address: '02:00:00:00:00:02'}}}}\nnetworks: {n: {}}")
    with pytest.raises(SpecError, match="service-level mac_address should have the same value"):
        container_spec(stack, "web", 1, labels={})


def test_ipam_pools_ip_range_aux_addresses(load: Loader) -> None:
    stack = load("""
services: {web: {image: x, networks: [n]}}
networks:
  n:
    ipam:
      driver: default
      config:
        - {subnet: 10.9.0.0/24, gateway: 10.9.0.1, ip_range: 10.9.0.128/25, aux_addresses: {nas: 10.9.0.5}}
        - {subnet: "fd00::/64"}
""")
    net = network_spec(stack, "n")
    assert (net.subnet, net.gateway, net.ip_range, net.aux_addresses) == (
        "10.9.0.0/24", "10.9.0.1", "10.9.0.128/25", {"nas": "10.9.0.5"})
    assert any("ipam.config[1]: IPv6 is not supported, pool fd00::/64 ignored" in w for w in stack.warnings)
    out = render_stack(stack)["networks"]["n"]["ipam"]
    assert out["driver"] == "default" and out["config"][0]["aux_addresses"] == {"nas": "10.9.0.5"}


@pytest.mark.parametrize(("ipam", "message"), [
    ("{config: [{subnet: 10.1.0.0/24}, {subnet: 10.2.0.0/24}]}", "not supported: a second IPv4 pool"),
    ("{driver: dhcp}", 'not supported: IPAM driver "dhcp"'),
    ("{options: {foo: bar}}", "not supported: IPAM driver options"),
    ("{config: [{ip_range: 10.1.0.0/28}]}", "need the pool's subnet"),
])
def test_ipam_refusals(load: Loader, ipam: str, message: str) -> None:
    assert message in _error(load, f"services: {{web: {{image: x}}}}\nnetworks: {{n: {{ipam: {ipam}}}}}")


def test_volume_driver_opts_bind_form_and_subpath(load: Loader, project) -> None:  # type: ignore[no-untyped-def]
    stack = load("""
services:
  web:
    image: x
    volumes:
      - {type: volume, source: data, target: /data, volume: {subpath: sub/dir, nocopy: true}}
volumes:
  data: {driver: local, driver_opts: {type: none, o: bind, device: ./on-host}}
""")
    assert volume_spec(stack, "data").driver_opts == {"type": "none", "o": "bind",
                                                       "device": f"{project}/on-host"}
    (mount,) = container_spec(stack, "web", 1, labels={}).mounts
    assert (mount.subpath, mount.nocopy) == ("sub/dir", True)
    for opts in ("{type: tmpfs, device: tmpfs, o: size=1m}", "{type: nfs, o: addr=1.2.3.4, device: ':/x'}",
                 "{type: none, o: 'bind,uid=1', device: /x}"):
        text = _error(load, f"services: {{web: {{image: x}}}}\nvolumes: {{v: {{driver_opts: {opts}}}}}")
        assert text.startswith("compose.yaml: volumes.v.driver_opts: not supported: local volume options"), text


def test_image_mounts_reach_the_container_spec(load: Loader) -> None:
    from runtime.types import Mount

    stack = load("services: {web: {image: x, volumes: [{type: image, source: 'nginx:alpine', target: /srv, "
                 "image: {subpath: usr/share/nginx/html}}]}}")
    assert container_spec(stack, "web", 1, labels={}).mounts == (
        Mount("image", "/srv", "nginx:alpine", read_only=True, subpath="usr/share/nginx/html"),)
    out = render_stack(stack)["services"]["web"]["volumes"][0]
    assert out == {"type": "image", "source": "nginx:alpine", "target": "/srv", "read_only": True,
                   "image": {"subpath": "usr/share/nginx/html"}}
    unset = load("services: {web: {image: x, volumes: [{type: image, source: '${NOPE}', target: /srv}]}}")
    with pytest.raises(SpecError, match="services.web.volumes\\[0\\].source: an image mount needs the image"):
        container_spec(unset, "web", 1, labels={})


def test_deploy_settings_without_effect_and_link_aliases_are_warned_about(load: Loader) -> None:
    stack = load("""
services:
  db: {image: x}
  web:
    image: x
    links: ["db:database", db]
    deploy:
      restart_policy: {condition: on-failure, delay: 5s, window: 1m}
      resources: {reservations: {cpus: "0.5", memory: 64m}}
""")
    text = "\n".join(stack.warnings)
    assert "services.web.deploy.restart_policy.delay: swarm-only, ignored" in text
    assert "services.web.deploy.restart_policy.window: swarm-only, ignored" in text
    assert "services.web.deploy.resources.reservations.cpus: only reservations.memory is applied" in text
    assert "services.web.links: the alias database of db is not resolved" in text
    assert container_spec(stack, "web", 1, labels={}).resources.memory_reservation == 64 << 20
