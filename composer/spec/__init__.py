"""Stack file -> typed model: load, merge -f files, .env + ${VAR} interpolation, validation.

Entry point: `load_stack(LoadOptions(...)) -> Stack`. Everything here is pure (no
printing, no exits); errors are `SpecError` naming the file and the key path.
"""
from __future__ import annotations

from composer.spec.load import LoadOptions, load_stack, normalise_project_name
from composer.spec.mounts import VolumeMount
from composer.spec.parts import DependsOn, EnvFile, FileRef, Healthcheck, ServiceNetwork
from composer.spec.ports import PortSpec
from composer.spec.resources import BuildSpec, Deploy, Logging, ResourceLimits, Ulimit
from composer.spec.service import ServiceSpec
from composer.spec.stack import Stack
from composer.spec.toplevel import FileObject, IpamPool, NetworkConfig, VolumeConfig

__all__ = [
    "BuildSpec", "DependsOn", "Deploy", "EnvFile", "FileObject", "FileRef", "Healthcheck",
    "IpamPool", "LoadOptions", "Logging", "NetworkConfig", "PortSpec", "ResourceLimits",
    "ServiceNetwork", "ServiceSpec", "Stack", "Ulimit", "VolumeConfig", "VolumeMount",
    "load_stack", "normalise_project_name",
]
