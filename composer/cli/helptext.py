"""Help for the options whose `add_argument` gives none, so that `--help` and the shell
completion describe every flag. Keyed by (verb, option or positional dest); verb "" is the
global options. `fill(parser)` is applied once the parser is built; a test asserts that no
option is left without help.
"""
from __future__ import annotations

import argparse

_SERVICES = "services to act on (default: all of the stack's)"
_T = "seconds to wait for a container to stop before killing it (default: its stop_grace_period)"

HELP: dict[tuple[str, str], str] = {
    ("", "-p"): "project name (default: COMPOSE_PROJECT_NAME, name:, the folder's name)",
    ("", "--project-directory"): "base folder for relative paths and .env (default: the "
                                 "first stack file's folder)",
    ("", "--env-file"): "interpolation variables from FILE instead of .env; repeatable",
    ("", "--profile"): "enable the services of this profile; repeatable",
    ("*", "services"): _SERVICES,
    ("*", "service"): "the service",
    ("*", "-t"): _T,
    ("*", "--remove-orphans"): "also remove containers of services no longer in the stack",
    ("*", "--index"): "which replica of the service (1, 2, ...; default 1)",
    ("up", "--no-build"): "don't build images, even when missing",
    ("up", "--no-start"): "create the containers, don't start them",
    ("up", "--force-recreate"): "recreate the containers even when their config is unchanged",
    ("up", "--no-recreate"): "keep existing containers even when their config changed",
    ("up", "--scale"): "SERVICE=N: run N containers of SERVICE (over deploy.replicas); "
                       "repeatable",
    ("up", "--abort-on-container-exit"): "stop everything when any container stops",
    ("up", "--exit-code-from"): "exit with this service's container's code (implies "
                                "--abort-on-container-exit)",
    ("port", "private_port"): "the container port",
    ("port", "--protocol"): "tcp (default) or udp",
    ("kill", "-s"): "the signal to send (default SIGKILL)",
    ("rm", "-f"): "don't ask for confirmation",
    ("rm", "-s"): "stop the containers first",
    ("rm", "-v"): "also remove their anonymous volumes",
    ("logs", "-f"): "follow: keep printing new output",
    ("logs", "-n"): "only the last N lines of each container",
    ("logs", "-t"): "prefix each line with its timestamp",
    ("logs", "--no-log-prefix"): "no container-name prefix",
    ("logs", "--no-color"): "no colours in the prefix",
    ("image import", "file"): "a rootfs tarball",
    ("image import", "--tag"): "the new image's name",
    ("image load", "file"): "a docker save archive or an OCI layout (tar or folder)",
    ("image rm", "refs"): "images to remove (names or ids)",
    ("image rm", "-f"): "remove even when containers use them",
}


def fill(parser: argparse.ArgumentParser, verb: str = "") -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if isinstance(sub, argparse.ArgumentParser):  # not a verb still to load
                    fill(sub, f"{verb} {name}".strip())
            continue
        if action.help or action.dest == "help":
            continue
        keys = [*action.option_strings, action.dest]
        for scope in (verb, "*"):
            text = next((HELP[(scope, k)] for k in keys if (scope, k) in HELP), None)
            if text:
                action.help = text
                break
