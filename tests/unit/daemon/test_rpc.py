"""Wire rules shared by daemon and client: strict bodies, error round trips, query values."""

from __future__ import annotations

import pytest

from runtime import rpc, serde
from runtime.api import ContainerInfo
from runtime.errors import Conflict, EngineError, InvalidArgument, LaunchError, NotFound
from runtime.types import ContainerSpec, Healthcheck, Mount, NetworkAttachment, Resources


def test_decode_round_trips_a_full_spec() -> None:
    spec = ContainerSpec(
        "a",
        "busybox",
        command=("x",),
        mounts=(Mount("volume", "/v", "data", nocopy=True),),
        resources=Resources(cpu_shares=512),
        networks=(NetworkAttachment("n", ("a1", "a2"), "10.0.0.5"),),
        extra_hosts=(("h", "1.2.3.4"),),
        healthcheck=Healthcheck(("CMD", "true"), interval=2),
    )
    wire = serde.to_dict(spec)
    assert rpc.decode(ContainerSpec, wire) == spec
    info = ContainerInfo("id", "a", "busybox", spec, state="running", addresses={"n": "10.0.0.5"})
    assert rpc.decode(ContainerInfo, serde.to_dict(info)) == info


def test_decode_accepts_int_for_float_and_null_for_optional() -> None:
    d = serde.to_dict(ContainerSpec("a", "b"))
    d["stop_grace_period"] = 3
    d["user"] = None
    spec = rpc.decode(ContainerSpec, d)
    assert spec.stop_grace_period == 3.0 and isinstance(spec.stop_grace_period, float)


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"healthcheck": {"test": ["CMD"], "retries": "3"}}, "ContainerSpec.healthcheck.retries"),
        (
            {"ports": [{"container_port": 80, "protocol": "icmp"}]},
            "ContainerSpec.ports[0].protocol",
        ),
        ({"labels": ["a=b"]}, "ContainerSpec.labels"),
        ({"stop_grace_period": True}, "ContainerSpec.stop_grace_period"),
        ({"networks": [{"network": "n", "aliases": "x"}]}, "ContainerSpec.networks[0].aliases"),
    ],
)
def test_decode_names_the_key_path(patch: dict[str, object], where: str) -> None:
    d = serde.to_dict(ContainerSpec("a", "b"))
    d.update(patch)
    with pytest.raises(InvalidArgument) as exc:
        rpc.decode(ContainerSpec, d)
    assert str(exc.value).startswith(f"invalid {where}:")


@pytest.mark.parametrize(
    "exc",
    [
        NotFound("no such container: x", subject="x"),
        Conflict("name in use"),
        InvalidArgument("bad"),
        LaunchError("exec failed", subject="web", exit_code=126),
        EngineError("something broke"),
    ],
)
def test_errors_round_trip(exc: EngineError) -> None:
    back = rpc.error_from_body(exc.status, rpc.error_body(exc))
    assert type(back) is type(exc)
    assert back.message == exc.message and back.subject == exc.subject and back.status == exc.status
    assert getattr(back, "exit_code", None) == getattr(exc, "exit_code", None)


def test_errors_from_unknown_kinds_fall_back_to_status() -> None:
    assert type(rpc.error_from_body(404, {"message": "gone", "kind": "ImageGone"})) is NotFound
    e = rpc.error_from_body(413, {"message": "too big"})
    assert type(e) is InvalidArgument and e.status == 413
    e = rpc.error_from_body(502, "not even json")
    assert type(e) is EngineError and e.status == 502 and "http 502" in str(e)
    # a kind whose status disagrees is not trusted
    assert type(rpc.error_from_body(500, {"message": "m", "kind": "NotFound"})) is EngineError


def test_subclasses_defined_elsewhere_are_rebuilt() -> None:
    class ImageMissing(NotFound):
        pass

    e = rpc.error_from_body(404, rpc.error_body(ImageMissing("no such image: x")))
    assert type(e) is ImageMissing


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("SIGTERM", "SIGTERM"),
        ("term", "SIGTERM"),
        ("9", "SIGKILL"),
        (None, "SIGKILL"),
        ("HUP", "SIGHUP"),
    ],
)
def test_parse_signal(given: str | None, name: str) -> None:
    assert rpc.parse_signal(given) == name


@pytest.mark.parametrize("bad", ["SIGFOO", "0x9", "999", "-1", "KILL;rm"])
def test_parse_signal_rejects(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        rpc.parse_signal(bad)


def test_labels_round_trip_values_with_equals() -> None:
    labels = {"com.docker.compose.project": "demo", "expr": "a=b"}
    assert rpc.parse_labels([v for _, v in rpc.format_labels(labels)]) == labels
    assert rpc.parse_labels([]) is None


@pytest.mark.parametrize(
    "ok",
    [
        "busybox",
        "busybox:latest",
        "library/nginx:1.25",
        "localhost:5000/a/b:c",
        "sha256:" + "a" * 64,
        "nginx@sha256:" + "f" * 64,
    ],
)
def test_image_refs_ok(ok: str) -> None:
    assert rpc.image_ref(ok) == ok


@pytest.mark.parametrize("bad", ["../etc", "a/../b", "/abs", "a//b", "", "a/.", ".hidden", "a b"])
def test_image_refs_bad(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        rpc.image_ref(bad)
