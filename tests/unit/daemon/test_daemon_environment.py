"""composerd starts with a scrubbed environment: nothing of the first CLI's shell leaks in."""
from __future__ import annotations

from pathlib import Path

import runtime
from runtime.client import daemon_environment

SHELL = {
    "PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "LD_PRELOAD": "/tmp/evil.so",
    "PYTHONPATH": "/tmp/mods", "PYTHONSTARTUP": "/tmp/x.py", "http_proxy": "http://p:3128",
    "COMPOSER_ROOT": "/srv/c", "COMPOSER_GROUP": "devs",
    "COMPOSERD_ENGINE": "evil:Engine.open",
}


def test_only_named_and_composer_variables_are_kept() -> None:
    env = daemon_environment(SHELL)
    src = str(Path(runtime.__file__).resolve().parent.parent)
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                   "COMPOSER_ROOT": "/srv/c", "COMPOSER_GROUP": "devs", "PYTHONPATH": src}


def test_the_engine_hook_passes_only_when_tests_ask() -> None:
    assert daemon_environment({**SHELL, "COMPOSER_TEST_HOOKS": "1"})["COMPOSERD_ENGINE"] == "evil:Engine.open"


def test_a_default_path() -> None:
    assert "/usr/sbin" in daemon_environment({})["PATH"]
