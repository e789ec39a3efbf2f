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


# zsh's own completion system (compinit) with the script sourced: the completer registered
# for `composer` (bashcompinit's _bash_complete -F _composer, which runs our function under
# `emulate sh`) is called for `words`/CURRENT as a Tab would; compadd, which needs a live
# line editor, is replaced by a stand-in printing the candidates that match the word, as
# zsh's matching keeps them (bashcompinit's compgen leaves that filtering to compadd).
_ZSH_DRIVER = r"""
autoload -U compinit; compinit -u
source "$1"
compadd() {
    while (( $# )) && [[ $1 != - ]]; do shift; done; shift
    local m; for m in "$@"; do [[ $m == ${words[CURRENT]}* ]] && print -r -- "$m"; done
    return 0
}
words=( ${(s: :)2} ); [[ $2 == *" " ]] && words+=("")
CURRENT=${#words}
[[ -n ${_comps[composer]} ]] || { print -u2 "no completer for composer"; exit 3 }
${=_comps[composer]}
"""


def zsh_complete(tmp_path: Path, script: Path, line: str) -> list[str]:
    shim = tmp_path / "bin" / "composer"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m composer.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    out = subprocess.run(["zsh", "-fc", _ZSH_DRIVER, "zsh", str(script), line], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    return sorted(w for w in out.splitlines() if w)


@pytest.mark.zsh
def test_zsh_completes_verbs_flags_and_services(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    script = tmp_path / "composer.zsh"
    script.write_text(capsys.readouterr().out)
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n  worker: {image: x}\n")
    (tmp_path / "other.yaml").write_text("services:\n  solo: {image: x}\n")
    assert zsh_complete(tmp_path, script, "composer v") == ["version", "volumes"]
    assert zsh_complete(tmp_path, script, "composer exec --pr") == ["--privileged"]
    assert zsh_complete(tmp_path, script, "composer --pro") == [
        "--profile", "--progress", "--project-directory", "--project-name"]
    assert "--dry-run" in zsh_complete(tmp_path, script, "composer --d")
    assert zsh_complete(tmp_path, script, "composer up -d w") == ["web", "worker"]
    assert zsh_complete(tmp_path, script, "composer -f other.yaml logs ") == ["solo"]
    assert zsh_complete(tmp_path, script, "composer image ") == ["import", "load", "ls", "rm"]
    assert zsh_complete(tmp_path, script, "composer ps --f") == ["--filter", "--format"]


def test_zsh_script_is_the_bash_one_through_bashcompinit(
        capsys: pytest.CaptureFixture[str]) -> None:
    main(["completion", "bash"])
    bash = capsys.readouterr().out
    main(["completion", "zsh"])
    zsh = capsys.readouterr().out
    assert "bashcompinit" in zsh and zsh.endswith(bash)


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
