"""The flags of `run` that change its one-off container, as argparse sees them; what they
do is runflags.py's. A module of its own: `exec`'s module registers `run` beside it, and
`exec -T` starts without the stack loader that runflags needs."""
from __future__ import annotations

import argparse

PULL_POLICIES = ("always", "missing", "never", "build")


def add_run_flags(r: argparse.ArgumentParser) -> None:
    r.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CONTAINER",
                   help="publish a container port on the host (as ports:); repeatable")
    r.add_argument("-P", "--service-ports", action="store_true",
                   help="publish the service's own ports: (a one-off publishes none otherwise)")
    r.add_argument("-v", "--volume", action="append", default=[], metavar="SOURCE:TARGET[:MODE]",
                   help="mount a path or a declared volume (as volumes:); repeatable")
    r.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE",
                   help="add or replace a label of the container; repeatable")
    r.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="add a Linux capability (e.g. NET_ADMIN); repeatable")
    r.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="drop a Linux capability (ALL drops every one); repeatable")
    r.add_argument("--use-aliases", action="store_true",
                   help="answer to the service's name and network aliases in DNS, as its "
                        "containers do (a one-off has only its own name otherwise)")
    r.add_argument("--build", action="store_true", help="build the image before running")
    r.add_argument("--pull", choices=PULL_POLICIES, default=None,
                   help="pull the image: always, missing, never, or build it (default: the "
                        "service's pull_policy)")
