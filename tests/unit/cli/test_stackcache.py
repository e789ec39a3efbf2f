"""composer.stackcache through composer.cli.quick.stack_summary: the stack summary of the
read-only verbs is loaded once, and loaded again whenever anything the load depended on
changed -- an edit, a new override or .env file, an optional env_file that appears, the
environment -- while errors stay the loader's, every time."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import composer.cli.stackargs
from composer import stackcache
from composer.cli import build_parser
from composer.cli.quick import stack_summary
from composer.errors import SpecError

STACK = "services:\n  web:\n    image: busybox\n"


@pytest.fixture
def loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Work in tmp_path/proj with a private COMPOSER_RUN; count the full loads."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(STACK)
    monkeypatch.chdir(proj)
    monkeypatch.setenv("COMPOSER_RUN", str(tmp_path / "run"))
    monkeypatch.setattr(stackcache, "STABLE_AFTER", 0.0)  # files written here count at once
    count = [0]
    real = composer.cli.stackargs.load_from_args

    def counting(*a: Any, **kw: Any) -> Any:
        count[0] += 1
        return real(*a, **kw)

    monkeypatch.setattr(composer.cli.stackargs, "load_from_args", counting)
    return count


def summary(*argv: str) -> Callable[[], stackcache.StackSummary]:
    args = build_parser().parse_args([*argv, "ps"])
    return lambda: stack_summary(args)  # type: ignore[return-value]


def test_a_second_load_is_a_hit_with_the_same_answer(loads: list[int]) -> None:
    get = summary()
    first = get()
    assert first == get() == stackcache.StackSummary("proj", ("web",), ("web",), ())
    assert loads == [1]
    assert summary("-f", "compose.yaml", "-p", "other")().name == "other"  # another entry
    assert loads == [2]


def test_an_edit_new_files_and_the_environment_each_mean_a_new_load(
        loads: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    get = summary()
    get()
    Path("compose.yaml").write_text(STACK.replace("web", "api"))  # same size
    assert get().services == ("api",)
    Path("compose.override.yaml").write_text("services:\n  extra:\n    image: busybox\n")
    assert get().services == ("api", "extra")
    Path("compose.override.yaml").unlink()
    assert get().services == ("api",)
    Path("compose.yaml").write_text("name: ${NAME:-proj}\n" + STACK)
    assert get().name == "proj"
    Path(".env").write_text("NAME=fromdotenv\n")
    assert get().name == "fromdotenv"
    monkeypatch.setenv("NAME", "fromenv")  # the environment wins over .env
    assert get().name == "fromenv"
    assert loads == [7]
    assert get().name == "fromenv"
    assert loads == [7]


def test_an_optional_env_file_that_appears_is_seen(loads: list[int]) -> None:
    Path("compose.yaml").write_text(
        STACK + "    env_file:\n      - path: conf/opt.env\n        required: false\n")
    get = summary()
    get()
    get()
    assert loads == [1]
    Path("conf").mkdir()
    Path("conf/opt.env").write_text("A=1\n")
    get()
    assert loads == [2]


def test_shell_variables_count_only_when_a_file_names_them(
        loads: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    get = summary()
    monkeypatch.setenv("OLDPWD", "/somewhere")
    get()
    monkeypatch.setenv("OLDPWD", "/elsewhere")  # a `cd` in the user's shell
    get()
    assert loads == [1]
    Path("compose.yaml").write_text("name: x${OLDPWD}\n" + STACK)
    with pytest.raises(SpecError, match="invalid project name"):
        get()
    Path("compose.yaml").write_text(STACK + "    environment: [OLDPWD]\n")
    get()
    get()
    assert loads == [3]
    monkeypatch.setenv("OLDPWD", "/third")
    get()
    assert loads == [4]


def test_errors_are_the_loaders_every_time(loads: list[int]) -> None:
    Path("compose.yaml").write_text(STACK + "    bogus: 1\n")
    get = summary()
    for _ in range(2):
        with pytest.raises(SpecError, match="services.web.bogus: unknown key"):
            get()
    assert loads == [2]


def test_warnings_and_profiles_are_kept(loads: list[int]) -> None:
    Path("compose.yaml").write_text(STACK + "    command: ${UNSET_X}\n"
                                    "  dbg:\n    image: busybox\n    profiles: [debug]\n")
    for _ in range(2):
        s = summary()()
        assert s.services == ("web",) and s.all_services == ("web", "dbg")
        assert len(s.warnings) == 1 and "UNSET_X" in s.warnings[0]
    assert loads == [1]
    assert summary("--profile", "debug")().services == ("web", "dbg")


def test_files_changed_just_now_are_not_trusted(loads: list[int],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A rewrite within the same clock tick keeps mtime and size: such a file is stored
    only once it is STABLE_AFTER seconds old."""
    monkeypatch.setattr(stackcache, "STABLE_AFTER", 3600.0)
    get = summary()
    get()
    get()
    assert loads == [2]


def test_stdin_and_a_name_alone_are_not_the_caches(loads: list[int]) -> None:
    assert stack_summary(build_parser().parse_args(["-f", "-", "ps"])) is None
    assert stack_summary(build_parser().parse_args(["-p", "x", "ps"])) is None
    assert loads == [0]


def test_entries_are_private_and_bounded(loads: list[int], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stackcache, "MAX_ENTRIES", 3)
    for i in range(5):
        summary("-f", "compose.yaml", "-p", f"p{i}")()
    folder = stackcache.cache_dir(tmp_path / "run")
    assert len(list(folder.glob("*.json"))) == 3
    assert folder.stat().st_mode & 0o777 == 0o700
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
