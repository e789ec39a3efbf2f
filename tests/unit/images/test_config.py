from __future__ import annotations

import json

import pytest

from runtime.errors import InvalidArgument
from runtime.images.config import ImageConfig, host_arch
from runtime.types import Healthcheck

DOCKER_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2023-05-18T22:34:17.815934137Z",
    "config": {
        "Env": ["PATH=/usr/local/bin:/usr/bin", "NGINX_VERSION=1.25.0", "EMPTY="],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Entrypoint": ["/docker-entrypoint.sh"],
        "WorkingDir": "/srv",
        "User": "101:101",
        "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
        "Volumes": {"/var/cache/nginx": {}},
        "Labels": {"maintainer": "NGINX"},
        "StopSignal": "SIGQUIT",
        "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5_000_000_000,
                        "Retries": 4},
        "Shell": ["/bin/bash", "-c"],
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
    "history": [{"created_by": "ADD file"}],
}


def test_parse_docker_config() -> None:
    cfg, diff_ids = ImageConfig.from_json(json.dumps(DOCKER_CONFIG).encode())
    assert diff_ids == ("sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert cfg.cmd == ("nginx", "-g", "daemon off;")
    assert cfg.entrypoint == ("/docker-entrypoint.sh",)
    assert cfg.env_dict() == {"PATH": "/usr/local/bin:/usr/bin", "NGINX_VERSION": "1.25.0", "EMPTY": ""}
    assert cfg.working_dir == "/srv" and cfg.user == "101:101"
    assert cfg.exposed_ports == ("443/tcp", "80/tcp")
    assert cfg.volumes == ("/var/cache/nginx",)
    assert cfg.stop_signal == "SIGQUIT"
    assert cfg.shell == ("/bin/bash", "-c")
    assert cfg.labels == {"maintainer": "NGINX"}
    # zero/missing durations take Docker's defaults
    assert cfg.healthcheck == Healthcheck(test=("CMD-SHELL", "curl -f localhost"), interval=5.0,
                                          timeout=30.0, retries=4)


def test_round_trip() -> None:
    cfg, diff_ids = ImageConfig.from_json(DOCKER_CONFIG)
    again, ids2 = ImageConfig.from_json(cfg.to_json(diff_ids))
    assert again == cfg and ids2 == diff_ids
    # deterministic bytes -> deterministic image id
    assert cfg.to_json(diff_ids) == again.to_json(ids2)


def test_defaults_and_minimal() -> None:
    cfg, ids = ImageConfig.from_json(b'{"rootfs": {"diff_ids": []}}')
    assert cfg.cmd is None and cfg.entrypoint is None and cfg.healthcheck is None
    assert cfg.architecture == host_arch() and cfg.os == "linux" and ids == ()
    out = json.loads(ImageConfig(cmd=()).to_json([]))
    assert out["config"] == {"Cmd": []}  # an explicit empty Cmd survives (differs from None)
    assert out["rootfs"] == {"type": "layers", "diff_ids": []}


def test_healthcheck_none_round_trip() -> None:
    cfg = ImageConfig(healthcheck=Healthcheck(test=("NONE",)))
    assert ImageConfig.from_json(cfg.to_json([]))[0] == cfg


@pytest.mark.parametrize("bad", [b"not json", b"[1, 2]"])
def test_bad_json(bad: bytes) -> None:
    with pytest.raises(InvalidArgument):
        ImageConfig.from_json(bad)
