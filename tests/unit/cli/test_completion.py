"""Shell completion: the generated bash script, loaded in a real bash, completes verbs,
flags and service names (through `composer config --services`); zsh gets the same through
bashcompinit, checked in a real zsh (marker zsh); every flag has help text."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from composer.cli import build_parser, main

REPO = Path(__file__).resolve().parents[3]


def complete(tmp_path: Path, script: Path, line: str) -> list[str]:
    """COMPREPLY for the command line `line` (the cursor at its end)."""
    shim = tmp_path / "bin" / "composer"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m composer.cli "$@"\n')
    shim.chmod(0o755)
    words = line.split(" ")
    prog = (f"source {script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\n_composer\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    out = subprocess.run(["bash", "-c", prog], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return sorted(w for w in out.splitlines() if w)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_verbs_flags_and_services(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "composer.bash"
    script.write_text(capsys.readouterr().out)
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n  worker: {image: x}\n")
    (tmp_path / "other.yaml").write_text("services:\n  solo: {image: x}\n")
    assert complete(tmp_path, script, "composer v") == ["version", "volumes"]
    assert "--privileged" in complete(tmp_path, script, "composer exec --pr")
    assert complete(tmp_path, script, "composer --pro") == ["--profile", "--progress",
                                                            "--project-directory",
                                                            "--project-name"]
    assert complete(tmp_path, script, "composer up -d w") == ["web", "worker"]
    assert complete(tmp_path, script, "composer -f other.yaml logs ") == ["solo"]
    assert complete(tmp_path, script, "composer image ") == ["import", "load", "ls", "rm"]


# zsh's own completion system (compinit) with the script either sourced (the eval form) or
# autoloaded from $fpath as `_composer` (what install-deps.sh installs): the completer zsh
# registered for `composer` is called for `words`/CURRENT as a Tab would, once per line in
# one shell (so the autoloaded first Tab and the later ones are both exercised). compadd,
# which needs a live line editor, is replaced by a stand-in printing the candidates that
# match the word, as zsh's matching keeps them (bashcompinit's compgen leaves that
# filtering to compadd).
_ZSH_DRIVER = r"""
mode=$1 script=$2; shift 2
if [[ $mode == fpath ]]; then
    fpath=( ${script:h} $fpath ); autoload -U compinit; compinit -u -D
    [[ ${_comps[composer]} == _composer ]] || { print -u2 "not autoloaded: ${_comps[composer]}"; exit 3 }
else
    autoload -U compinit; compinit -u -D; source $script
fi
compadd() {
    while (( $# )) && [[ $1 != - ]]; do shift; done; shift
    local m; for m in "$@"; do [[ $m == ${words[CURRENT]}* ]] && print -r -- "$m"; done
    return 0
}
for line in "$@"; do
    words=( ${(s: :)line} ); [[ $line == *" " ]] && words+=("")
    CURRENT=${#words}
    [[ -n ${_comps[composer]} ]] || { print -u2 "no completer for composer"; exit 3 }
    ${=_comps[composer]}
    print -r -- "=="
done
"""


def zsh_complete(tmp_path: Path, script: Path, mode: str, *lines: str) -> list[list[str]]:
    shim = tmp_path / "bin" / "composer"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m composer.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    out = subprocess.run(["zsh", "-fc", _ZSH_DRIVER, "zsh", mode, str(script), *lines],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return [sorted(w for w in part.splitlines() if w) for part in out.split("==\n")[:-1]]


@pytest.mark.zsh
@pytest.mark.parametrize("mode", ["eval", "fpath"])
def test_zsh_completes_verbs_flags_and_services(tmp_path: Path, mode: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    folder = tmp_path / "site-functions"
    folder.mkdir()
    script = folder / "_composer"  # the name compinit autoloads it by
    script.write_text(capsys.readouterr().out)
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n  worker: {image: x}\n")
    (tmp_path / "other.yaml").write_text("services:\n  solo: {image: x}\n")
    cases = {
        "composer v": ["version", "volumes"],
        "composer exec --pr": ["--privileged"],
        "composer --pro": ["--profile", "--progress", "--project-directory", "--project-name"],
        "composer --dry": ["--dry-run"],
        "composer up -d w": ["web", "worker"],
        "composer -f other.yaml logs ": ["solo"],
        "composer image ": ["import", "load", "ls", "rm"],
        "composer ps --f": ["--filter", "--format"],
    }
    assert zsh_complete(tmp_path, script, mode, *cases) == list(cases.values())


def test_zsh_script_is_the_bash_one_through_bashcompinit(
        capsys: pytest.CaptureFixture[str]) -> None:
    main(["completion", "bash"])
    bash = capsys.readouterr().out
    main(["completion", "zsh"])
    zsh = capsys.readouterr().out
    assert zsh.startswith("#compdef composer\n") and "bashcompinit" in zsh
    assert bash.replace("_composer", "_composer_bash") in zsh


def test_every_option_has_help() -> None:
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, f"{path} {name}")
            elif not a.help and a.dest != "help":
                missing.append(f"{path} {(a.option_strings or [a.dest])[0]}")

    walk(build_parser(), "composer")
    assert missing == []
