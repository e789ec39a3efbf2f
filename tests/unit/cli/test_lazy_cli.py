"""The CLI loads a verb's module only when that verb runs: `composer --help` and `composer
version` import none of the heavy libraries, and lazily built parsers are the same as the
eagerly built ones (every verb's flags and help)."""
from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys

import pytest

from composer.cli import VERBS, build_parser

HEAVY = ("aiohttp", "networkx", "rich", "yaml", "composer.operations", "composer.spec")


def _subparsers(p: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))


def _imported_after(argv: list[str]) -> set[str]:
    code = ("import sys\nfrom composer.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         check=True, timeout=60)
    return set(out.stderr.split())


def test_the_verb_table_is_what_the_modules_register() -> None:
    sub = _subparsers(build_parser())
    listed = [(a.dest, a.help) for a in sub._choices_actions]
    assert listed == [(name, text) for name, (_, text) in VERBS.items()]
    for name, (module, _) in VERBS.items():
        func = sub._name_parser_map[name].get_default("func")
        assert func.__module__ == f"composer.cli.{module}", name


@pytest.mark.parametrize("argv", [["--help"], ["version"], ["--version"], [],
                                  ["version", "--format", "json"]])
def test_help_and_version_import_no_heavy_module(argv: list[str]) -> None:
    loaded = _imported_after(argv)
    assert "composer.cli" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == []


def test_a_verb_help_loads_only_its_module() -> None:
    loaded = _imported_after(["version", "--help"])
    assert "composer.cli.version_cmd" in loaded
    assert not {f"composer.cli.{m}" for m, _ in VERBS.values()} - {
        "composer.cli.version_cmd"} & loaded


@pytest.mark.parametrize("verb", list(VERBS))
def test_lazy_verb_help_equals_the_eager_one(verb: str) -> None:
    eager = _subparsers(build_parser())._name_parser_map[verb].format_help()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as ended:
        build_parser(lazy=True).parse_args([verb, "--help"])
    assert ended.value.code == 0
    assert out.getvalue() == eager


def test_lazy_parse_gives_the_same_namespace() -> None:
    argv = ["-p", "proj", "ps", "-a", "--format", "json", "web"]
    assert vars(build_parser(lazy=True).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_an_unknown_verb_is_a_usage_error_naming_the_verbs() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ended:
        build_parser(lazy=True).parse_args(["nosuch"])
    assert ended.value.code == 1
    assert "invalid choice: 'nosuch'" in err.getvalue() and "'completion'" in err.getvalue()
