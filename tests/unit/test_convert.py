"""ServiceSpec -> runtime ContainerSpec / NetworkSpec / VolumeSpec, and the config hash."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.convert import config_hash, container_spec, network_spec, volume_spec
from composer.errors import SpecError
from composer.spec import LoadOptions, Stack, load_stack
from runtime.serde import from_dict, to_dict
from runtime.types import (
    ContainerSpec,
    Healthcheck,
    InjectedFile,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    PortBinding,
    Resources,
    Ulimit,
    VolumeSpec,
)

STACK = """
services:
  web:
    image: nginx
    command: nginx -g 'daemon off;'
    entrypoint: [/entry.sh]
    env_file: web.env
    environment: {A: "from-env", B: "2"}
    labels: {team: web}
    ports: ["127.0.0.1:8080:80", "53/udp", "6005-6015:443"]
    volumes: ["data:/data", "./html:/html:ro", "/anon", {type: tmpfs, target: /cache, tmpfs: {size: 1m, mode: 0o700}}]
    tmpfs: ["/run:size=64k"]
    networks:
      front: {aliases: [www], ipv4_address: 10.9.0.5}
      back: {priority: 100}
    healthcheck: {test: [CMD, curl, -f, http://localhost], interval: 10s, timeout: 2s, retries: 5, start_period: 1m}
    cpus: 0.5
    mem_limit: 512m
    memswap_limit: 1g
    pids_limit: 64
    cpuset: "0"
    cpu_shares: 256
    ulimits: {nofile: {soft: 100, hard: 200}}
    sysctls: {net.ipv4.ip_forward: 1}
    cap_add: [NET_ADMIN]
    user: "1000"
    working_dir: /srv
    hostname: h
    extra_hosts: ["a:1.2.3.4"]
    dns: [9.9.9.9]
    init: true
    stop_signal: SIGINT
    stop_grace_period: 3s
    restart: on-failure:2
    read_only: true
    shm_size: 128m
    storage_opt: {size: 10m}
    secrets: [pw]
  side:
    image: busybox
    network_mode: service:web
    deploy:
      resources: {limits: {cpus: "1.5", memory: 64m, pids: 10}, reservations: {memory: 32m}}
      restart_policy: {condition: any}
  named:
    image: busybox
    container_name: fixed
    healthcheck: {disable: true}
  built:
    build: .
networks:
  front: {ipam: {config: [{subnet: 10.9.0.0/24, gateway: 10.9.0.1}]}, driver_opts: {com.docker.network.driver.mtu: "1400"}, internal: true}
  back: {name: shared-back}
  ext: {external: true}
volumes:
  data: {labels: {k: v}}
  ext: {external: true, name: outside}
secrets:
  pw: {file: ./pw.txt}
"""


@pytest.fixture
def st(tmp_path: Path) -> Stack:
    (tmp_path / "compose.yaml").write_text(STACK)
    (tmp_path / "web.env").write_text("A=from-file\nC=3\n")
    return load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="proj"))


def test_web_container(st: Stack, tmp_path: Path) -> None:
    spec = container_spec(st, "web", 2, labels={"com.docker.compose.project": "proj"})
    assert spec.name == "proj-web-2"
    assert spec.image == "nginx"
    assert spec.command == ("nginx", "-g", "daemon off;")
    assert spec.entrypoint == ("/entry.sh",)
    assert spec.env == {"A": "from-env", "B": "2", "C": "3"}  # env_file first, environment wins
    assert spec.labels == {"team": "web", "com.docker.compose.project": "proj"}
    assert spec.ports == (
        PortBinding(80, "tcp", "127.0.0.1", 8080), PortBinding(53, "udp", "", 0),
        PortBinding(443, "tcp", "", 6005, host_port_end=6015),  # the engine picks the first free
    )
    assert spec.mounts == (
        Mount("volume", "/data", "proj_data"),
        Mount("bind", "/html", str(tmp_path / "html"), read_only=True, create_host_path=True),
        Mount("volume", "/anon", ""),
        Mount("tmpfs", "/cache", tmpfs_size=1 << 20, tmpfs_mode=0o700),
        Mount("tmpfs", "/run", tmpfs_size=64 << 10),
        Mount("bind", "/run/secrets/pw", str(tmp_path / "pw.txt"), read_only=True, create_host_path=False),
    )
    assert spec.network_mode == "bridge"
    assert spec.networks == (  # highest priority first
        NetworkAttachment("shared-back", ("web",), None, 100),
        NetworkAttachment("proj_front", ("web", "www"), "10.9.0.5", 0),
    )
    assert spec.healthcheck == Healthcheck(("CMD", "curl", "-f", "http://localhost"), 10.0, 2.0, 5, 60.0, 5.0)
    assert spec.resources == Resources(
        memory=512 << 20, memory_swap=1 << 30, cpu_quota=50_000, cpu_period=100_000, cpu_shares=256,
        pids_limit=64, cpuset_cpus="0")
    assert spec.ulimits == (Ulimit("nofile", 100, 200),)
    assert spec.sysctls == {"net.ipv4.ip_forward": "1"}
    assert (spec.user, spec.working_dir, spec.hostname, spec.init) == ("1000", "/srv", "h", True)
    assert (spec.stop_signal, spec.stop_grace_period, spec.restart) == ("SIGINT", 3.0, "on-failure:2")
    assert (spec.read_only, spec.shm_size, spec.cap_add) == (True, 128 << 20, ("NET_ADMIN",))
    assert spec.storage_size == 10 << 20
    assert (spec.extra_hosts, spec.dns) == ((("a", "1.2.3.4"),), ("9.9.9.9",))
    assert from_dict(ContainerSpec, to_dict(spec)) == spec  # survives the daemon socket


def test_service_network_mode_and_deploy_resources(st: Stack) -> None:
    spec = container_spec(st, "side", 1, labels={})
    assert spec.network_mode == "container:proj-web-1"
    assert spec.networks == ()
    assert spec.resources == Resources(memory=64 << 20, memory_reservation=32 << 20, cpu_quota=150_000, pids_limit=10)
    assert spec.restart == "always"
    assert spec.stop_grace_period == 10.0 and spec.stop_signal is None


def test_defaults_container_name_and_build_image(st: Stack) -> None:
    named = container_spec(st, "named", 1, labels={})
    assert named.name == "fixed"
    assert named.healthcheck == Healthcheck(test=("NONE",))
    assert named.networks == (NetworkAttachment("proj_default", ("named",)),)
    built = container_spec(st, "built", 3, labels={})
    assert (built.name, built.image, built.healthcheck, built.restart) == ("proj-built-3", "proj-built", None, "no")


def test_unknown_service(st: Stack) -> None:
    with pytest.raises(SpecError, match='no such service "nope"'):
        container_spec(st, "nope", 1, labels={})


def test_network_and_volume_specs(st: Stack) -> None:
    assert network_spec(st, "front") == NetworkSpec(
        "proj_front", internal=True, subnet="10.9.0.0/24", gateway="10.9.0.1", mtu=1400,
        labels={"com.docker.compose.project": "proj", "com.docker.compose.network": "front"})
    assert network_spec(st, "back").name == "shared-back"
    assert network_spec(st, "ext").external is True and network_spec(st, "ext").name == "ext"
    assert network_spec(st, "default").name == "proj_default"
    assert volume_spec(st, "data") == VolumeSpec(
        "proj_data", {"k": "v", "com.docker.compose.project": "proj", "com.docker.compose.volume": "data"})
    assert volume_spec(st, "ext") == VolumeSpec(
        "outside", {"com.docker.compose.project": "proj", "com.docker.compose.volume": "ext"}, external=True)


def test_secrets_and_configs_become_binds_or_files_the_engine_makes(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text("pw\n")
    (tmp_path / "compose.yaml").write_text("""
services:
  a:
    image: x
    secrets: [plain, {source: owned, uid: "1000", gid: "1001", mode: 0400}, {source: env, target: tok}]
    configs: [{source: inline, target: /etc/app.conf, mode: "0640"}, plain_cfg]
secrets:
  plain: {file: ./pw.txt}
  owned: {file: ./pw.txt}
  env: {environment: TOKEN}
configs:
  inline: {content: "debug=${DEBUG}"}
  plain_cfg: {file: ./pw.txt}
""")
    st = load_stack(LoadOptions(environ={"TOKEN": "t0k", "DEBUG": "1"}, working_dir=str(tmp_path),
                                project_name="p"))
    spec = container_spec(st, "a", 1, labels={})
    pw = str(tmp_path / "pw.txt")
    # without uid/gid/mode a file is bound as it is (live, as Compose binds it)
    assert Mount("bind", "/run/secrets/plain", pw, read_only=True, create_host_path=False) in spec.mounts
    assert Mount("bind", "/plain_cfg", pw, read_only=True, create_host_path=False) in spec.mounts
    assert spec.files == (
        InjectedFile("/run/secrets/owned", source=pw, uid=1000, gid=1001, mode=0o400),
        InjectedFile("/run/secrets/tok", content="dDBr", mode=0o444),  # base64 of t0k
        InjectedFile("/etc/app.conf", content="ZGVidWc9MQ==", mode=0o640),  # debug=1
    )
    assert from_dict(ContainerSpec, to_dict(spec)) == spec
    st = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))
    with pytest.raises(SpecError, match='environment variable TOKEN required by secret "env" is not set'):
        container_spec(st, "a", 1, labels={})


def test_secret_uid_must_be_a_number(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services: {a: {image: x, secrets: [{source: s, uid: www}]}}\nsecrets: {s: {file: ./s}}")
    with pytest.raises(SpecError, match="services.a.secrets\\[0\\].uid: expected a numeric uid"):
        load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))


def test_config_hash_stable_and_sensitive(st: Stack, tmp_path: Path) -> None:
    web = st.services["web"]
    h = config_hash(web)
    assert len(h) == 64 and h == config_hash(web)
    again = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="proj"))
    assert config_hash(again.services["web"]) == h  # stable across loads
    (tmp_path / "compose.yaml").write_text(STACK.replace("B: \"2\"", "B: \"3\""))
    changed = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="proj"))
    assert config_hash(changed.services["web"]) != h
    (tmp_path / "compose.yaml").write_text(STACK.replace("    image: busybox\n    network_mode", "    image: busybox\n    scale: 4\n    network_mode"))
    scaled = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="proj"))
    assert scaled.services["side"].replicas == 4
    assert config_hash(scaled.services["side"]) == config_hash(st.services["side"])  # scaling alone: same hash
