"""Instructions that change only the image config (no files): pure functions."""
from __future__ import annotations

from dataclasses import replace

from runtime.images.build import parser as p
from runtime.images.build.interfaces import ImageConfig
from runtime.images.build.rootview import clean_abs
from runtime.types import Healthcheck as HealthcheckSpec

METADATA = (p.Env, p.Label, p.User, p.Expose, p.Volume, p.StopSignal, p.Shell, p.Cmd,
            p.Entrypoint, p.Healthcheck)


def set_env(env: tuple[str, ...], key: str, value: str) -> tuple[str, ...]:
    out = [e for e in env if e.partition("=")[0] != key]
    if len(out) == len(env):
        return (*env, f"{key}={value}")
    return tuple(f"{key}={value}" if e.partition("=")[0] == key else e for e in env)


def _command(config: ImageConfig, command: tuple[str, ...], shell_form: bool) -> tuple[str, ...]:
    return (*config.shell, command[0]) if shell_form else command


def apply(config: ImageConfig, inst: p.Instruction) -> ImageConfig:
    """The config after a metadata instruction (already expanded)."""
    match inst:
        case p.Env(pairs=pairs):
            env = config.env
            for k, v in pairs:
                env = set_env(env, k, v)
            return replace(config, env=env)
        case p.Label(pairs=pairs):
            return replace(config, labels={**config.labels, **dict(pairs)})
        case p.User(user=user):
            return replace(config, user=user)
        case p.Expose(ports=ports):
            return replace(config, exposed_ports=tuple(sorted({*config.exposed_ports, *ports})))
        case p.Volume(paths=paths):
            return replace(config, volumes=tuple(sorted({*config.volumes, *(clean_abs(x) for x in paths)})))
        case p.StopSignal(signal=sig):
            return replace(config, stop_signal=sig)
        case p.Shell(argv=argv):
            return replace(config, shell=argv)
        case p.Cmd(command=cmd, shell_form=sf):
            return replace(config, cmd=_command(config, cmd, sf))
        case p.Entrypoint(command=cmd, shell_form=sf):
            # like Docker: a new ENTRYPOINT drops the CMD inherited from the base image
            return replace(config, entrypoint=_command(config, cmd, sf), cmd=None)
        case p.Healthcheck(test=test):
            if test == ("NONE",):
                return replace(config, healthcheck=HealthcheckSpec(test=("NONE",)))
            hc = HealthcheckSpec(test=test)
            return replace(config, healthcheck=replace(
                hc,
                interval=inst.interval if inst.interval is not None else hc.interval,
                timeout=inst.timeout if inst.timeout is not None else hc.timeout,
                start_period=inst.start_period if inst.start_period is not None else hc.start_period,
                start_interval=inst.start_interval if inst.start_interval is not None else hc.start_interval,
                retries=inst.retries if inst.retries is not None else hc.retries,
            ))
    raise TypeError(f"{type(inst).__name__} is not a metadata instruction")
