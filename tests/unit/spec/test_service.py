"""Every service key: short and long syntaxes through the whole loader."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import SpecError
from composer.spec import DependsOn, EnvFile, FileRef, Healthcheck, ServiceNetwork, Ulimit

from .conftest import Loader

FULL = """
name: full
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    image: nginx:1.25
    build:
      context: ./web
      dockerfile: Dockerfile.dev
      target: prod
      args: [A=1, B]
      labels: {l: v}
      cache_from: [x]
    command: nginx -g 'daemon off;'
    entrypoint: ["/docker-entrypoint.sh"]
    environment:
      FROM_MAP: value
      NUMBER: 5
      BOOL: true
      EMPTY: ""
      FROM_OS:
      NOT_SET:
    env_file: [web.env, {path: missing.env, required: false}]
    labels: [a=b, c]
    ports: ["8080:80", {target: 443, published: 8443}]
    expose: [3000]
    volumes: ["data:/data", "./html:/usr/share/nginx/html:ro"]
    tmpfs: /run
    depends_on:
      db: {condition: service_healthy, restart: true}
      cache: {condition: service_started, required: false}
    networks:
      front: {aliases: [www, site], ipv4_address: 10.5.0.5, priority: 10}
      back:
    healthcheck:
      test: curl -f http://localhost
      interval: 1m30s
      timeout: 1.5s
      retries: 3
      start_period: 100ms
      start_interval: 2s
    deploy:
      replicas: 1
      resources:
        limits: {cpus: "1.5", memory: 1g, pids: 200}
        reservations: {cpus: 0.25, memory: 256m}
      restart_policy: {condition: on-failure, max_attempts: 3, delay: 5s}
    mem_limit: 1g
    memswap_limit: 2g
    mem_reservation: 256m
    cpus: 1.5
    cpu_shares: 512
    cpu_quota: 50000
    cpu_period: 100000
    cpuset: "0-1"
    pids_limit: 200
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    sysctls: [net.core.somaxconn=1024]
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    user: "1000:1000"
    working_dir: /srv
    hostname: web
    domainname: example.com
    extra_hosts: ["db.local:10.0.0.2", "cache.local=10.0.0.3"]
    dns: 8.8.8.8
    dns_search: [example.com]
    dns_opt: [use-vc]
    init: true
    stop_signal: SIGQUIT
    stop_grace_period: 1m
    shm_size: 64m
    read_only: "true"
    privileged: false
    tty: yes
    stdin_open: "1"
    profiles: [web]
    container_name: the-web
    pull_policy: missing
    security_opt: [no-new-privileges:true]
    group_add: [audio, 1001]
    logging: {driver: json-file, options: {max-size: 10m}}
    platform: linux/amd64
    x-custom: ignored
  db:
    image: postgres
    sysctls: {kernel.shm_rmid_forced: 1}
    extra_hosts: {a.local: 1.2.3.4, b.local: [1.1.1.1, 2.2.2.2]}
    ulimits: {nofile: 65535}
    healthcheck: {test: ["CMD", "pg_isready"], disable: false}
    secrets: [pw, {source: cert, target: /etc/cert.pem, mode: 0440}]
    configs: [app]
    networks: [back]
  cache:
    image: redis
    network_mode: service:db
    volumes_from: [db:ro, "container:other"]
    links: [db:database]
    scale: 3
    command: [redis-server, --appendonly, "yes"]
    tmpfs: ["/tmp:size=1m,mode=1777"]
    healthcheck: {disable: true}
    dns: [1.1.1.1, 8.8.4.4]
networks:
  front:
    driver: bridge
    ipam: {config: [{subnet: 10.5.0.0/16, gateway: 10.5.0.1}]}
    labels: [team=web]
    driver_opts: {com.docker.network.driver.mtu: 1400}
  back: {internal: true}
  outside: {external: true, name: host-net}
volumes:
  data: {labels: {keep: "yes"}}
  old: {external: {name: legacy}}
secrets:
  pw: {file: ./pw.txt}
  cert: {environment: CERT}
configs:
  app: {content: "hello"}
"""


@pytest.fixture
def full(load: Loader, write: object, project: Path) -> object:
    (project / "web.env").write_text("FROM_FILE=1\nFROM_MAP=overridden-by-environment\n")
    return load(FULL, environ={"FROM_OS": "os-value"}, profiles=["web"])


def test_scalars_and_booleans(full: object) -> None:
    web = full.services["web"]  # type: ignore[attr-defined]
    assert web.image == "nginx:1.25"
    assert web.restart == "unless-stopped"  # from the YAML merge key
    assert (web.read_only, web.privileged, web.tty, web.stdin_open, web.init) == (True, False, True, True, True)
    assert (web.user, web.working_dir, web.hostname, web.domainname) == ("1000:1000", "/srv", "web", "example.com")
    assert (web.stop_signal, web.stop_grace_period, web.shm_size) == ("SIGQUIT", 60.0, 64 << 20)
    assert (web.container_name, web.pull_policy, web.platform) == ("the-web", "missing", "linux/amd64")
    assert web.group_add == ("audio", "1001")


def test_build(full: object, project: Path) -> None:
    b = full.services["web"].build  # type: ignore[attr-defined]
    assert b.context == str(project / "web")
    assert (b.dockerfile, b.target, b.args, b.labels, b.cache_from) == (
        "Dockerfile.dev", "prod", {"A": "1", "B": None}, {"l": "v"}, ("x",))


def test_command_entrypoint(full: object) -> None:
    s = full.services  # type: ignore[attr-defined]
    assert s["web"].command == ("nginx", "-g", "daemon off;")
    assert s["web"].entrypoint == ("/docker-entrypoint.sh",)
    assert s["cache"].command == ("redis-server", "--appendonly", "yes")


def test_environment_and_env_file(full: object, project: Path) -> None:
    web = full.services["web"]  # type: ignore[attr-defined]
    assert web.environment == {
        "FROM_FILE": "1", "FROM_MAP": "value", "NUMBER": "5", "BOOL": "true", "EMPTY": "",
        "FROM_OS": "os-value",
    }
    assert web.env_files == (EnvFile(str(project / "web.env")), EnvFile(str(project / "missing.env"), False))
    assert web.labels == {"a": "b", "c": ""}


def test_ports_volumes_tmpfs(full: object, project: Path) -> None:
    web = full.services["web"]  # type: ignore[attr-defined]
    assert [(p.published, p.target) for p in web.ports] == [(8080, 80), (8443, 443)]
    assert web.expose == ("3000",)
    assert [(m.type, m.source, m.target, m.read_only) for m in web.volumes] == [
        ("volume", "data", "/data", False), ("bind", str(project / "html"), "/usr/share/nginx/html", True)]
    assert [(m.type, m.target) for m in web.tmpfs] == [("tmpfs", "/run")]
    cache = full.services["cache"]  # type: ignore[attr-defined]
    assert (cache.tmpfs[0].tmpfs_size, cache.tmpfs[0].tmpfs_mode) == (1 << 20, 0o1777)


def test_depends_on_and_networks(full: object) -> None:
    s = full.services  # type: ignore[attr-defined]
    assert s["web"].depends_on == (  # sorted by name: the model is canonical
        DependsOn("cache", "service_started", required=False), DependsOn("db", "service_healthy", restart=True))
    assert s["web"].networks == (
        ServiceNetwork("back"), ServiceNetwork("front", ("www", "site"), "10.5.0.5", priority=10))
    assert s["db"].networks == (ServiceNetwork("back"),)
    assert s["cache"].network_mode == "service:db"
    assert s["cache"].volumes_from == ("db:ro", "container:other")
    assert s["cache"].links == ("db:database",)


def test_healthchecks(full: object) -> None:
    s = full.services  # type: ignore[attr-defined]
    assert s["web"].healthcheck == Healthcheck(
        ("CMD-SHELL", "curl -f http://localhost"), 90.0, 1.5, 3, 0.1, 2.0)
    assert s["db"].healthcheck.test == ("CMD", "pg_isready")
    assert s["cache"].healthcheck == Healthcheck(test=("NONE",), disable=True)


def test_resources(full: object) -> None:
    web = full.services["web"]  # type: ignore[attr-defined]
    assert web.deploy.replicas == 1 and web.replicas == 1
    assert (web.deploy.limits.cpus, web.deploy.limits.memory, web.deploy.limits.pids) == (1.5, 1 << 30, 200)
    assert web.deploy.reservations.memory == 256 << 20
    assert web.deploy.restart_policy.max_attempts == 3  # type: ignore[union-attr]
    assert (web.mem_limit, web.memswap_limit, web.mem_reservation) == (1 << 30, 2 << 30, 256 << 20)
    assert (web.cpus, web.cpu_shares, web.cpu_quota, web.cpu_period, web.cpuset, web.pids_limit) == (
        1.5, 512, 50000, 100000, "0-1", 200)
    assert web.ulimits == (Ulimit("nofile", 1024, 2048), Ulimit("nproc", 512, 512))
    assert full.services["db"].ulimits == (Ulimit("nofile", 65535, 65535),)  # type: ignore[attr-defined]
    assert full.services["cache"].replicas == 3  # type: ignore[attr-defined]


def test_kernel_and_host_settings(full: object) -> None:
    s = full.services  # type: ignore[attr-defined]
    assert s["web"].sysctls == {"net.core.somaxconn": "1024"}
    assert s["db"].sysctls == {"kernel.shm_rmid_forced": "1"}
    assert (s["web"].cap_add, s["web"].cap_drop) == (("NET_ADMIN",), ("ALL",))
    assert s["web"].extra_hosts == (("db.local", "10.0.0.2"), ("cache.local", "10.0.0.3"))
    assert s["db"].extra_hosts == (("a.local", "1.2.3.4"), ("b.local", "1.1.1.1"), ("b.local", "2.2.2.2"))
    assert (s["web"].dns, s["web"].dns_search, s["web"].dns_opt) == (("8.8.8.8",), ("example.com",), ("use-vc",))
    assert s["cache"].dns == ("1.1.1.1", "8.8.4.4")
    assert s["web"].logging.options == {"max-size": "10m"}  # type: ignore[union-attr]
    assert s["web"].logging.max_size == 10_000_000  # type: ignore[union-attr]  # decimal
    assert s["web"].security_opt == ("no-new-privileges:true",)


def test_secrets_configs_and_top_level(full: object, project: Path) -> None:
    st = full  # type: ignore[assignment]
    assert st.services["db"].secrets == (FileRef("pw"), FileRef("cert", "/etc/cert.pem", mode=0o440))  # type: ignore[attr-defined]
    assert st.services["db"].configs == (FileRef("app"),)  # type: ignore[attr-defined]
    assert st.secrets["pw"].file == str(project / "pw.txt")  # type: ignore[attr-defined]
    assert st.secrets["cert"].environment == "CERT"  # type: ignore[attr-defined]
    assert st.configs["app"].content == "hello"  # type: ignore[attr-defined]
    front = st.networks["front"]  # type: ignore[attr-defined]
    assert (front.ipam[0].subnet, front.ipam[0].gateway, front.labels) == ("10.5.0.0/16", "10.5.0.1", {"team": "web"})
    assert front.driver_opts == {"com.docker.network.driver.mtu": "1400"}
    assert st.networks["back"].internal is True  # type: ignore[attr-defined]
    assert st.network_name("front") == "full_front"  # type: ignore[attr-defined]
    assert st.network_name("outside") == "host-net"  # type: ignore[attr-defined]
    assert st.volume_name("data") == "full_data"  # type: ignore[attr-defined]
    assert st.volume_name("old") == "legacy"  # type: ignore[attr-defined]
    assert "default" not in st.networks  # every service names its networks  # type: ignore[attr-defined]


def test_warnings_for_harmless_keys(full: object) -> None:
    text = "\n".join(full.warnings)  # type: ignore[attr-defined]
    assert "services.web.platform: platform is ignored" in text
    assert "services.web.logging" not in text  # kept and used: json-file with max-size


def test_warnings_for_ignored_settings(load: Loader) -> None:
    st = load("""
        services:
          a: {image: x, deploy: {placement: {constraints: []}}, networks: {n: {ipv6_address: "::5"}}}
        networks: {n: {enable_ipv6: true, driver_opts: {foo: bar}}}
    """)
    text = "\n".join(st.warnings)
    assert "compose.yaml: services.a.deploy.placement: swarm-only, ignored on a single host" in text
    assert "services.a.networks.n.ipv6_address: IPv6 is not supported" in text
    assert "networks.n.enable_ipv6: IPv6 is not supported" in text
    assert "networks.n.driver_opts: only com.docker.network.driver.mtu is used, ignored: foo" in text


def test_default_network_added(load: Loader) -> None:
    st = load("services: {a: {image: x}}")
    assert list(st.networks) == ["default"]
    assert st.services["a"].networks == ()


def test_required_env_file_missing(load: Loader) -> None:
    with pytest.raises(SpecError) as err:
        load("services: {a: {image: x, env_file: nope.env}}")
    assert "compose.yaml: services.a.env_file: env file" in str(err.value)
    assert "nope.env\" not found" in str(err.value)


def test_security_opt_seccomp_file_is_relative_to_the_project(load: Loader, project: Path) -> None:
    st = load("""
        services:
          a:
            image: x
            security_opt: ["seccomp=profiles/p.json", "seccomp:./q.json", "seccomp=unconfined",
                           "no-new-privileges:true", "apparmor=unconfined", "seccomp=/etc/p.json"]
    """)
    assert st.services["a"].security_opt == (
        f"seccomp={project}/profiles/p.json", f"seccomp={project}/q.json", "seccomp=unconfined",
        "no-new-privileges:true", "apparmor=unconfined", "seccomp=/etc/p.json")
