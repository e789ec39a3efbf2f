"""`composer config`: validate the stack and print its normalised, interpolated model."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from composer.errors import SpecError
from composer.graph import build_graph
from composer.spec import LoadOptions, Stack, load_stack
from composer.spec.render import render_stack


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("config", help="validate and print the stack in canonical form")
    p.add_argument("service_names", nargs="*", metavar="SERVICE",
                   help="print only these services, the services they depend on, and what they use")
    p.add_argument("-q", "--quiet", action="store_true", help="only validate, print nothing")
    p.add_argument("--services", action="store_true", help="print the service names")
    p.add_argument("--volumes", action="store_true", help="print the volume names")
    p.add_argument("--profiles", dest="list_profiles", action="store_true", help="print the profile names")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml")
    p.add_argument("--no-interpolate-escape", dest="escape", action="store_false",
                   help="print $ as is (the output then no longer loads to the same values)")
    p.set_defaults(func=run)


def load_from_args(args: argparse.Namespace) -> Stack:
    """The stack selected by the global options (-f, -p, --project-directory, ...)."""
    return load_stack(LoadOptions(
        files=tuple(args.files or ()),
        project_name=args.project_name,
        project_directory=args.project_directory,
        env_files=tuple(args.env_files or ()),
        profiles=tuple(args.profiles or ()),
    ))


def run(args: argparse.Namespace) -> int:
    stack = load_from_args(args)
    for warning in stack.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # a dependency cycle or a depends_on of an undefined service fails here as at `up`
    build_graph(stack.with_services_enabled(args.service_names))
    if args.service_names:
        stack = select_services(stack, args.service_names)
    if args.quiet:
        return 0
    if args.services:
        _lines(stack.services)
    elif args.volumes:
        _lines(stack.volumes)
    elif args.list_profiles:
        _lines(stack.all_profiles())
    else:
        data = render_stack(stack, escape=args.escape)
        if args.format == "json":
            print(json.dumps(data, indent=2))
        else:
            sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000))
    return 0


def select_services(stack: Stack, names: list[str]) -> Stack:
    """`config web`: web and what it depends on (transitively, as `up web` starts them), with
    the networks/volumes/secrets/configs they use. A named service runs whatever its
    profiles, as with every verb (Stack.with_services_enabled)."""
    every = stack.all_services()
    unknown = [n for n in names if n not in every]
    if unknown:
        raise SpecError(
            f'no such service: {", ".join(unknown)} (known: {", ".join(sorted(every)) or "none"})'
        )
    stack = stack.with_services_enabled(names)
    return stack.with_only_services(build_graph(stack).select(names))


def _lines(names: Any) -> None:
    for name in names:
        print(name)
