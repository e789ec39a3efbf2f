"""runtime.daemon.weblib and the lazy imports of runtime.engine: composerd imports aiohttp's
server without aiohttp's client, and neither the builder nor the registry client until it
builds or pulls (issue 15: composerd <= 40 MiB RSS); whoever asks for more still gets it."""
from __future__ import annotations

import subprocess
import sys

# imported by composerd before this change, never used by a composerd that only runs containers
UNUSED = ("aiohttp.client", "aiohttp.connector", "aiohttp.client_reqrep", "aiohttp.cookiejar",
          "aiohttp.tracing", "runtime.images.registry", "runtime.images.registry_client",
          "runtime.images.build", "runtime.images.build_adapters", "runtime.commit")


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_composerd_imports_the_server_only() -> None:
    code = ("import sys, runtime.daemon.cli, runtime.engine, aiohttp; "
            f"print(sorted(m for m in {UNUSED!r} if m in sys.modules), 'ClientSession' in vars(aiohttp))")
    assert run(code) == "[] False"


def test_the_whole_of_aiohttp_is_there_for_whoever_asks() -> None:
    code = ("import runtime.daemon.weblib as w, aiohttp, aiohttp.client, aiohttp.web; "
            "from importlib.metadata import version; "
            "print(aiohttp.ClientSession is aiohttp.client.ClientSession, w.web is aiohttp.web, "
            "w.WSCloseCode is aiohttp.WSCloseCode, aiohttp.__version__ == version('aiohttp'))")
    assert run(code) == "True True True True"


def test_a_server_that_needs_more_of_the_init_gets_aiohttp_whole() -> None:
    # without the preset __version__, aiohttp.http's `from . import __version__` runs the
    # package __init__ in the middle of the server's import: a circular import error
    code = ("import runtime.deferredpkg as d; orig = d.defer; "
            "d.defer = lambda name, **preset: orig(name); "
            "import runtime.daemon.weblib as w, aiohttp, aiohttp.web; "
            "print(w.web is aiohttp.web, 'ClientSession' in vars(aiohttp))")
    assert run(code) == "True True"


def test_nothing_changes_when_aiohttp_was_imported_first() -> None:
    code = ("import aiohttp; import runtime.daemon.weblib as w; "
            "print(w.web is aiohttp.web, 'ClientSession' in vars(aiohttp))")
    assert run(code) == "True True"


def test_preload_imports_a_deferred_package_whole_off_the_loop() -> None:
    # what the engine does on its first pull: aiohttp's client, imported in a worker thread
    code = ("import asyncio, sys, threading, runtime.daemon.weblib, aiohttp; "
            "from runtime import deferredpkg; "
            "seen = []; orig = deferredpkg.complete; "
            "deferredpkg.complete = lambda n: (seen.append(threading.current_thread() is threading.main_thread()), orig(n)); "
            "asyncio.run(deferredpkg.preload('aiohttp', 'runtime.images.registry')); "
            "print('ClientSession' in vars(aiohttp), 'runtime.images.registry' in sys.modules, seen)")
    assert run(code) == "True True [False, False]"
