"""Every user error is one SpecError line naming the file and the key path."""
from __future__ import annotations

import pytest

from composer.errors import SpecError

from .conftest import Loader


@pytest.mark.parametrize(("text", "expected"), [
    ("services: {web: {image: x, portz: []}}",
     'compose.yaml: services.web.portz: unknown key (did you mean "ports"?)'),
    ("services: {web: {image: x, enviroment: {}}}",
     'compose.yaml: services.web.enviroment: unknown key (did you mean "environment"?)'),
    ("services: {web: {image: x, zzzzqqq: 1}}", "compose.yaml: services.web.zzzzqqq: unknown key"),
    ("servics: {}", 'compose.yaml: servics: unknown key (did you mean "services"?)'),
    ("services: {web: {image: x, healthcheck: {tset: [NONE]}}}",
     'compose.yaml: services.web.healthcheck.tset: unknown key (did you mean "test"?)'),
    ("services: {web: {image: x, deploy: {resources: {limit: {}}}}}",
     'compose.yaml: services.web.deploy.resources.limit: unknown key (did you mean "limits"?)'),
    ("services: {web: {image: x}}\nnetworks: {n: {drivr: bridge}}",
     'compose.yaml: networks.n.drivr: unknown key (did you mean "driver"?)'),
])
def test_unknown_keys(load: Loader, text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(text)
    assert str(err.value) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("services: {web: {image: 5}}", "compose.yaml: services.web.image: expected a string, got integer 5"),
    ("services: {web: {image: x, ports: 80}}", "compose.yaml: services.web.ports: expected a sequence, got integer 80"),
    ("services: {web: {image: x, privileged: maybe}}",
     "compose.yaml: services.web.privileged: expected a boolean, got string 'maybe'"),
    ("services: {web: {image: x, environment: {A: [1]}}}",
     "compose.yaml: services.web.environment.A: expected a string, number or boolean, got sequence [1]"),
    ("services: {web: {image: x, cpus: lots}}", "compose.yaml: services.web.cpus: expected a number"),
    ("services: {web: {image: x, mem_limit: big}}", 'compose.yaml: services.web.mem_limit: invalid size "big"'),
    ("services: {web: {image: x, scale: -1}}", "compose.yaml: services.web.scale: scale must not be negative"),
    ("services: {web: {image: x, restart: sometimes}}",
     'compose.yaml: services.web.restart: invalid restart policy "sometimes"'),
    ("services: {web: {image: x, depends_on: {db: {condition: service_ready}}}}",
     'compose.yaml: services.web.depends_on.db.condition: invalid condition "service_ready"'),
    ("services: {web: {image: x, healthcheck: {test: [RUN, x]}}}",
     'compose.yaml: services.web.healthcheck.test: test must start with "CMD", "CMD-SHELL" or "NONE"'),
    ("services: {web: {image: x, stop_grace_period: 10}}",
     'compose.yaml: services.web.stop_grace_period: expected a duration like "1m30s", got integer'),
    ("services: [web]", "compose.yaml: services: expected a mapping, got sequence"),
    ("services: {web: {image: x, ulimits: {nofile: {soft: 10}}}}",
     "compose.yaml: services.web.ulimits.nofile: missing key hard"),
    ("services: {web: {image: x, ulimits: {nofile: {soft: 10, hard: 5}}}}",
     "compose.yaml: services.web.ulimits.nofile: soft limit 10 is above the hard limit 5"),
    ("services: {web: {image: x, network_mode: host, networks: [a]}}\nnetworks: {a: {}}",
     "compose.yaml: services.web.network_mode: network_mode and networks cannot be combined"),
    ("services: {web: {image: x, scale: 2, deploy: {replicas: 3}}}",
     "compose.yaml: services.web.scale: scale 2 differs from deploy.replicas 3"),
    ("services: {web: {image: x, environment: [A=1, A=1]}}",
     "compose.yaml: services.web.environment[1]: duplicate entry 'A=1'"),
    ("services: {web: {build: {context: ., ssh: ['=./key']}}}",
     'compose.yaml: services.web.build.ssh: invalid ssh entry "=./key"'),
    ("services: {web: {image: x, extra_hosts: [nohost]}}",
     'compose.yaml: services.web.extra_hosts[0]: invalid extra host "nohost"'),
    ("services: {web: {image: x, container_name: '-bad'}}",
     'compose.yaml: services.web.container_name: invalid container name "-bad"'),
    ("services: {web: {image: x, volumes_from: ['a:rx']}}",
     'compose.yaml: services.web.volumes_from[0]: invalid volumes_from "a:rx"'),
    ("services: {web: {image: x, profiles: ['-x']}}",
     'compose.yaml: services.web.profiles[0]: invalid profile name "-x"'),
    ("services: {web: {image: x}}\nvolumes: {v: {name: ../../etc}}",
     'compose.yaml: volumes.v.name: invalid volume name "../../etc"'),
])
def test_wrong_values(load: Loader, text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(text)
    assert str(err.value).startswith(expected), str(err.value)


@pytest.mark.parametrize(("key", "value"), [
    ("blkio_config", "{weight: 10}"), ("gpus", "all"), ("runtime", "runc"),
    ("cgroup_parent", "x"),
])
def test_unsupported_service_keys_are_named(load: Loader, key: str, value: str) -> None:
    with pytest.raises(SpecError) as err:
        load(f"services: {{web: {{image: x, {key}: {value}}}}}")
    assert str(err.value).startswith(f"compose.yaml: services.web.{key}: not supported: ")


@pytest.mark.parametrize(("text", "expected"), [
    ("models: {m: {model: ai/x}}\nservices: {}", "compose.yaml: models: not supported: models"),
    ("services: {web: {image: x, ipc: none}}", 'services.web.ipc: not supported: ipc "none"'),
    ("services: {web: {image: x, network_mode: 'ns:/x'}}", 'not supported: network_mode "ns:/x"'),
    ("services: {web: {image: x}}\nnetworks: {n: {driver: overlay}}",
     'compose.yaml: networks.n.driver: not supported: network driver "overlay"'),
    ("services: {web: {image: x}}\nvolumes: {v: {driver: nfs}}",
     'compose.yaml: volumes.v.driver: not supported: volume driver "nfs"'),
    ("services: {web: {image: x, deploy: {resources: {reservations: {devices: []}}}}}",
     "services.web.deploy.resources.reservations.devices: not supported: devices"),
    ("services: {web: {image: x, networks: {n: {driver_opts: {a: b}}}}}\nnetworks: {n: {}}",
     "services.web.networks.n.driver_opts: not supported: driver_opts on a service network"),
])
def test_unsupported_values_are_named(load: Loader, text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(text)
    assert expected in str(err.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("services: {web: {}}",
     "compose.yaml: services.web: has neither an image nor a build context (add image: or build:)"),
    ("services: {web: {image: x, networks: [nope]}}",
     'compose.yaml: services.web.networks.nope: undefined network "nope"'),
    ("services: {web: {image: x, volumes: ['nope:/x']}}",
     'compose.yaml: services.web.volumes[0]: undefined volume "nope"'),
    ("services: {web: {image: x, secrets: [nope]}}",
     'compose.yaml: services.web.secrets[0]: undefined secret "nope"'),
    ("services: {web: {image: x}}\nsecrets: {s: {}}",
     "compose.yaml: secrets.s: a secret needs exactly one of file, environment"),
    ("services: {web: {image: x}}\nnetworks: {n: {external: true, driver: bridge}}",
     "compose.yaml: networks.n.driver: an external resource cannot set driver"),
])
def test_cross_reference_errors(load: Loader, text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(text)
    assert str(err.value).startswith(expected), str(err.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("services: [\n", "compose.yaml: line 2 column 1: invalid YAML"),
    ("a: 1\na: 2\n", "compose.yaml: line 2 column 1: invalid YAML: duplicate key 'a'"),
    ("", "compose.yaml: empty stack file"),
    ("- 1\n", "compose.yaml: expected a mapping, got sequence"),
    ("services: {1: {image: x}}", "compose.yaml: services.1: keys must be strings"),
])
def test_yaml_errors(load: Loader, text: str, expected: str) -> None:
    with pytest.raises(SpecError) as err:
        load(text)
    assert str(err.value).startswith(expected), str(err.value)


def test_error_in_override_names_that_file(load: Loader, write: object) -> None:
    write("compose.override.yaml", "services: {web: {portz: []}}")  # type: ignore[operator]
    with pytest.raises(SpecError) as err:
        load("services: {web: {image: x}}")
    assert str(err.value).startswith("compose.override.yaml: services.web.portz: unknown key")


def test_required_variable_error(load: Loader) -> None:
    with pytest.raises(SpecError) as err:
        load("services: {web: {image: '${TAG:?set TAG to the image tag}'}}")
    assert str(err.value) == (
        "compose.yaml: services.web.image: required variable TAG is missing a value: set TAG to the image tag"
    )


def test_cli_prints_one_line_and_exits_1(load: Loader, write: object, project: object,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """As docker compose since v2.33 (no more per-category codes such as 15): exit 1."""
    from composer.cli import main

    write("compose.yaml", "services: {web: {image: x, portz: []}}")  # type: ignore[operator]
    code = main(["--project-directory", str(project), "config"])
    assert code == 1
    err = capsys.readouterr().err
    assert err == 'error: compose.yaml: services.web.portz: unknown key (did you mean "ports"?)\n'
