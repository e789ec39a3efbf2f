"""`devices`, `device_cgroup_rules`, and the refused `gpus` / device reservations."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from composer.convert import container_spec
from composer.errors import SpecError
from composer.spec.devices import DeviceSpec
from composer.spec.render import render_stack
from runtime.types import DeviceMapping
from tests.unit.spec.conftest import Loader

Write = Callable[[str, str], Path]


def devices(load: Loader, value: str) -> tuple[DeviceSpec, ...]:
    return load(f"services: {{web: {{image: x, devices: {value}}}}}").services["web"].devices


@pytest.mark.parametrize(("value", "expected"), [
    ("['/dev/ttyUSB0']", DeviceSpec("/dev/ttyUSB0", "/dev/ttyUSB0", "rwm")),
    ("['/dev/sda:/dev/xvda']", DeviceSpec("/dev/sda", "/dev/xvda", "rwm")),
    ("['/dev/sda:/dev/xvda:r']", DeviceSpec("/dev/sda", "/dev/xvda", "r")),
    ("['/dev/sda::mr']", DeviceSpec("/dev/sda", "/dev/sda", "rm")),
    ("[{source: /dev/sda}]", DeviceSpec("/dev/sda", "/dev/sda", "rwm")),
    ("[{source: /dev/sda, target: /dev/xvda, permissions: rw}]", DeviceSpec("/dev/sda", "/dev/xvda", "rw")),
])
def test_short_and_long_syntax(load: Loader, value: str, expected: DeviceSpec) -> None:
    assert devices(load, value) == (expected,)


def test_one_entry_per_container_path_the_later_wins(load: Loader) -> None:
    assert devices(load, "['/dev/ttyS0:/dev/x', '/dev/sda', '/dev/sdb:/dev/x:r']") == (
        DeviceSpec("/dev/sda", "/dev/sda"), DeviceSpec("/dev/sdb", "/dev/x", "r"))


@pytest.mark.parametrize(("value", "message"), [
    ("['/dev/a:/dev/b:r:x']", 'services.web.devices[0]: confusing device mapping "/dev/a:/dev/b:r:x": '
                              "use HOST[:CONTAINER[:PERMISSIONS]] or the long syntax"),
    ("['ttyUSB0']", 'services.web.devices[0]: device host path "ttyUSB0" must be absolute'),
    ("['/dev/a:b']", 'services.web.devices[0]: device container path "b" must be absolute'),
    ("['/dev/a:/dev/a:rx']", 'services.web.devices[0]: invalid device access "rx": use one or more'),
    ("[{source: /dev/a, permissions: ''}]",
     'services.web.devices[0].permissions: invalid device access "": use one or more of r, w and m'),
    ("[{target: /dev/a}]", "services.web.devices[0]: missing key source"),
    ("[{source: /dev/a, mode: r}]", "services.web.devices[0].mode: unknown key"),
    ("['nvidia.com/gpu=all']", 'services.web.devices[0]: not supported: CDI device "nvidia.com/gpu=all"'),
    ("/dev/a", "services.web.devices: expected a sequence, got string"),
])
def test_bad_devices(load: Loader, value: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        devices(load, value)
    assert message in str(e.value)
    assert str(e.value).startswith("compose.yaml: services.web.devices")


def test_device_cgroup_rules_are_checked_and_kept(load: Loader) -> None:
    web = load("services: {web: {image: x, device_cgroup_rules: ['c 1:3 mr', 'a *:* rwm', 'b 8:* r']}}")
    assert web.services["web"].device_cgroup_rules == ("c 1:3 mr", "a *:* rwm", "b 8:* r")


@pytest.mark.parametrize("rule", ["c 1:3", "c 1:3 rwx", "z *:* r", "c one:3 r", "c 1:3  r"])
def test_a_bad_device_cgroup_rule_names_the_entry_and_the_syntax(load: Loader, rule: str) -> None:
    with pytest.raises(SpecError) as e:
        load(f"services: {{web: {{image: x, device_cgroup_rules: ['c 1:3 r', '{rule}']}}}}")
    assert str(e.value) == (
        f'compose.yaml: services.web.device_cgroup_rules[1]: invalid device cgroup rule "{rule}": '
        'use "TYPE MAJOR:MINOR ACCESS" with TYPE a, b or c, MAJOR and MINOR numbers or *, '
        'ACCESS made of r, w and m (e.g. "c 1:3 rwm")')


def test_gpus_and_device_reservations_are_refused_in_one_line(load: Loader) -> None:
    with pytest.raises(SpecError) as e:
        load("services: {web: {image: x, gpus: all}}")
    assert str(e.value) == (
        "compose.yaml: services.web.gpus: not supported: gpus (GPU requests need a vendor's "
        "container toolkit; pass the GPU's device nodes with devices: instead)")
    with pytest.raises(SpecError) as e:
        load("services: {web: {image: x, deploy: {resources: {reservations: "
             "{devices: [{capabilities: [gpu]}]}}}}}")
    assert str(e.value).startswith(
        "compose.yaml: services.web.deploy.resources.reservations.devices: not supported: devices "
        "(device reservations need a vendor's container toolkit")


def test_override_files_merge_devices_by_container_path(load: Loader, write: Write) -> None:
    write("compose.yaml", """
        services:
          web:
            image: x
            devices: ["/dev/ttyS0:/dev/serial", "/dev/sda"]
            device_cgroup_rules: ["c 1:3 r"]
        """)
    write("over.yaml", """
        services:
          web:
            devices: [{source: /dev/ttyUSB0, target: /dev/serial, permissions: rw}]
            device_cgroup_rules: ["c 1:3 r", "b 8:* r"]
        """)
    web = load(files=["compose.yaml", "over.yaml"]).services["web"]
    assert sorted(web.devices, key=lambda d: d.target) == [
        DeviceSpec("/dev/sda", "/dev/sda"), DeviceSpec("/dev/ttyUSB0", "/dev/serial", "rw")]
    assert web.device_cgroup_rules == ("c 1:3 r", "b 8:* r")


def test_config_prints_the_long_syntax_and_the_engine_gets_them(load: Loader) -> None:
    stack = load("services: {web: {image: x, devices: ['/dev/sda:/dev/xvda:r'], "
                 "device_cgroup_rules: ['c 188:* rwm']}}")
    web = render_stack(stack)["services"]["web"]
    assert web["devices"] == [{"source": "/dev/sda", "target": "/dev/xvda", "permissions": "r"}]
    assert web["device_cgroup_rules"] == ["c 188:* rwm"]
    spec = container_spec(stack, "web", 1, labels={})
    assert spec.devices == (DeviceMapping("/dev/sda", "/dev/xvda", "r"),)
    assert spec.device_cgroup_rules == ("c 188:* rwm",)
