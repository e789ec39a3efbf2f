from __future__ import annotations

import pytest

from runtime.errors import InvalidArgument
from runtime.images.reference import Reference, familiar, normalize

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "normal", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1", "nginx:1"),
        ("me/app", "docker.io/me/app:latest", "me/app:latest"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("ghcr.io/o/r/x:v1.2-rc_3", "ghcr.io/o/r/x:v1.2-rc_3", "ghcr.io/o/r/x:v1.2-rc_3"),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}"),
        ("my.registry:443/x__y/a-b.c", "my.registry:443/x__y/a-b.c:latest", "my.registry:443/x__y/a-b.c:latest"),
        ("[::1]:5000/img", "[::1]:5000/img:latest", "[::1]:5000/img:latest"),
    ],
)
def test_parse_table(ref: str, normal: str, short: str) -> None:
    assert normalize(ref) == normal
    assert familiar(ref) == short
    assert normalize(normal) == normal  # idempotent


@pytest.mark.parametrize(
    "ref",
    [
        "", " busybox", "Busybox", "busybox:", "busybox:-bad", ":tag", "a//b", "a/b/",
        "busybox@sha256:abc", "busybox@sha256:" + "AB" * 32, "busybox@" + "ab" * 32,
        "ab" * 32, "bad_-name", "-leading", "a" * 256, "busybox:" + "t" * 129, "docker.io/UPPER/case",
    ],
)
def test_invalid(ref: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        Reference.parse(ref)
    assert "invalid image reference" in str(e.value)


def test_parts_and_defaults() -> None:
    r = Reference.parse("localhost:5000/a/b")
    assert (r.domain, r.path, r.tag, r.digest) == ("localhost:5000", "a/b", "latest", None)
    assert Reference.parse(f"busybox@{D}").tag is None
    assert Reference.parse("busybox", default_tag=None).tag is None
    assert Reference.parse("busybox").familiar_name == "busybox"
    assert Reference.parse("me/app:2").with_tag("3").familiar() == "me/app:3"


def test_uppercase_message_names_the_fix() -> None:
    with pytest.raises(InvalidArgument, match="lowercase"):
        Reference.parse("docker.io/Me/App")
