"""Build images from Dockerfiles (`composer build`, `services.*.build`).

    from runtime.images.build import Builder
    image_id = await Builder(layers=..., images=..., runner=..., state_root=paths.root).build(
        context_dir, "Dockerfile", tag="app:1", target=None, build_args={}, no_cache=False,
        progress=print)

The builder talks to the engine only through the protocols in `interfaces.py`.
"""
from runtime.images.build.builder import Builder, build
from runtime.images.build.errors import BuildError
from runtime.images.build.interfaces import (
    BuildImage,
    ImageConfig,
    ImageSink,
    LayerSink,
    RunResult,
    RunStep,
)
from runtime.images.build.parser import Dockerfile, parse

__all__ = ["BuildError", "BuildImage", "Builder", "Dockerfile", "ImageConfig", "ImageSink",
           "LayerSink", "RunResult", "RunStep", "build", "parse"]
