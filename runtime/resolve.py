"""What a container runs, from its ContainerSpec over its image's config (Docker's rules).

Pure functions: the engine calls them at create time and stores the result, so a later
change of the image does not change an existing container.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from runtime.errors import InvalidArgument

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def resolve_argv(
    spec_entrypoint: Sequence[str] | None,
    spec_command: Sequence[str] | None,
    image_entrypoint: Sequence[str] | None,
    image_cmd: Sequence[str] | None,
    *,
    name: str = "",
) -> list[str]:
    """Entrypoint + command, as Docker: a new entrypoint drops the image's Cmd."""
    if spec_entrypoint is not None:
        entry = list(spec_entrypoint)
        cmd = list(spec_command) if spec_command is not None else []
    else:
        entry = list(image_entrypoint or [])
        cmd = list(spec_command) if spec_command is not None else list(image_cmd or [])
    argv = entry + cmd
    if not argv:
        raise InvalidArgument(
            f"container {name}: no command specified: set `command:` in the stack file "
            "or CMD/ENTRYPOINT in the image",
            subject=name,
        )
    return argv


def env_list_to_dict(env: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, Mapping):
        return {str(k): str(v) for k, v in env.items()}
    out: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        out[key] = value if sep else ""
    return out


def merge_env(
    image_env: Iterable[str] | Mapping[str, str] | None, spec_env: Mapping[str, str], hostname: str
) -> list[str]:
    """Image Env, then the spec's, then HOSTNAME and a default PATH as Docker sets them."""
    env = env_list_to_dict(image_env)
    env.update(spec_env)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", hostname)
    return [f"{k}={v}" for k, v in env.items()]


def container_hostname(spec_hostname: str | None, container_id: str) -> str:
    """Docker's default hostname is the first 12 characters of the container id."""
    return spec_hostname or container_id[:12]
