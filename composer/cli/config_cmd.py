"""`composer config`: validate the stack and print its normalised, interpolated model."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from composer.cli.psformat import tabwrite
from composer.cli.stackargs import load_from_args, stdin_stack
from composer.convert import config_hash
from composer.errors import ComposerError, SpecError
from composer.graph import build_graph
from composer.spec import LoadOptions, Stack
from composer.spec.load import stack_files
from composer.spec.render import render_stack
from composer.spec.variables import variables_of


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("config", help="validate and print the stack in canonical form")
    p.add_argument("service_names", nargs="*", metavar="SERVICE",
                   help="print only these services, the services they depend on, and what they use")
    p.add_argument("-q", "--quiet", action="store_true", help="only validate, print nothing")
    p.add_argument("--services", action="store_true", help="print the service names")
    p.add_argument("--volumes", action="store_true", help="print the volume names")
    p.add_argument("--profiles", dest="list_profiles", action="store_true", help="print the profile names")
    p.add_argument("--images", action="store_true", help="print each service's image")
    p.add_argument("--networks", action="store_true", help="print the network names")
    p.add_argument("--hash", metavar="'*'|SERVICE,...",
                   help="print SERVICE HASH for these services (* every one): the config hash "
                        "on their containers, which decides whether up recreates them")
    p.add_argument("--variables", action="store_true",
                   help="print the variables the stack files use, with their defaults")
    p.add_argument("--environment", action="store_true",
                   help="print the interpolation environment (KEY=VALUE)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--no-interpolate", action="store_true",
                   help="print ${VAR} as written: normalise without substituting variables")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml",
                   help="yaml (default) or json")
    p.add_argument("--no-interpolate-escape", dest="escape", action="store_false",
                   help="print $ as is (the output then no longer loads to the same values)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.variables:  # from the files as written: a required variable may be unset
        return _write(args, _variables(args))
    if args.no_interpolate:
        args.escape = False  # `$$` and `${VAR}` are printed as written
    try:
        stack = load_from_args(args, interpolate=not args.no_interpolate)
    except SpecError as e:
        if args.no_interpolate and "$" in str(e):
            # a number, size, duration or port written as a variable can't be normalised
            # unsubstituted (Compose's typed model can't either, for most of them)
            raise SpecError(f"{e} (config --no-interpolate: this value is normalised, so its "
                            "variables must be substituted; run config without "
                            "--no-interpolate)") from None
        raise
    for warning in stack.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # a dependency cycle or a depends_on of an undefined service fails here as at `up`
    build_graph(stack.with_services_enabled(args.service_names))
    if args.service_names:
        stack = select_services(stack, args.service_names)
    if args.quiet:
        return 0
    return _write(args, _render(stack, args))


def _write(args: argparse.Namespace, text: str) -> int:
    if args.output:
        try:
            with open(args.output, "w") as f:
                f.write(text)
        except OSError as e:
            raise ComposerError(f"config -o {args.output}: {e.strerror}") from None
    else:
        sys.stdout.write(text)
    return 0


def _render(stack: Stack, args: argparse.Namespace) -> str:
    if args.services:
        return _lines(stack.services)
    if args.volumes:
        return _lines(stack.volumes)
    if args.list_profiles:
        return _lines(stack.all_profiles())
    if args.images:
        return _lines(s.image or f"{stack.name}-{n}" for n, s in sorted(stack.services.items()))
    if args.networks:
        return _lines(stack.networks)
    if args.hash is not None:
        names = sorted(stack.services) if args.hash.strip() == "*" else \
            [n.strip() for n in args.hash.split(",") if n.strip()]
        unknown = [n for n in names if n not in stack.services]
        if unknown:
            raise ComposerError(f"config --hash: no such service: {', '.join(unknown)}")
        return _lines(f"{n} {config_hash(stack.services[n])}" for n in names)
    if args.environment:
        return _lines(f"{k}={v}" for k, v in sorted(stack.environment.items()))
    data = render_stack(stack, escape=args.escape)
    if args.format == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


def _variables(args: argparse.Namespace) -> str:
    found = variables_of((str(f) for f in stack_files(LoadOptions(
        files=tuple(args.files or ()), project_directory=args.project_directory,
        stdin=stdin_stack(args)))), stdin=stdin_stack(args))
    if args.format == "json":
        return json.dumps([v.__dict__ for v in found], indent=2) + "\n"
    rows = ["NAME\tREQUIRED\tDEFAULT VALUE\tALTERNATE VALUE"] + [
        f"{v.name}\t{str(v.required).lower()}\t{v.default}\t{v.alternate}" for v in found]
    return _lines(tabwrite(rows))


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


def _lines(names: Any) -> str:
    return "".join(f"{name}\n" for name in names)
