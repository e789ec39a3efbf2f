"""`build --pull` pulls what a Dockerfile starts FROM: not scratch, not its own stages."""
from __future__ import annotations

from runtime.engine import from_images

DOCKERFILE = """\
ARG TAG=3.19
FROM alpine:${TAG} AS base
FROM base AS mid
FROM scratch
FROM busybox:${BB}
FROM alpine:${TAG}
"""


def test_from_images_expands_args_and_skips_stages_and_scratch() -> None:
    assert from_images(DOCKERFILE, "Dockerfile", {"BB": "1.36"}) == ["alpine:3.19", "busybox:1.36"]
    assert from_images(DOCKERFILE, "Dockerfile", {"TAG": "3.20", "BB": "x"})[0] == "alpine:3.20"


def test_a_stage_named_like_a_later_image_is_still_pulled_before_it_exists() -> None:
    assert from_images("FROM base\nFROM alpine AS base\nFROM base\n", "Dockerfile", {}) == [
        "base", "alpine"]
