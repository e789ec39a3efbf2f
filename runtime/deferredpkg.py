"""Import a few submodules of a large package without running the package's `__init__`.

Some packages import every part of themselves in their `__init__`: pyroute2 (NDB with sqlite,
IPDB, nl80211, wireguard, ...) and aiohttp (its whole HTTP client: connector, cookie jar,
client requests and websockets, tracing, resolver). composerd keeps every module it imported
for its lifetime, so what it never uses stays in its resident memory (issue 15: <= 40 MiB).

`defer(name, **preset)` puts the package module in sys.modules without running its `__init__`
(Python then imports the submodules asked for from the package's path as usual), with
`preset` attributes that its submodules read from the package itself (aiohttp's `http`
module reads `aiohttp.__version__`). The first access to any other attribute that is not a
submodule runs the real `__init__` into that same module object and answers from it:
whoever wants the whole package gets it, a little later. When the package is imported
already, or can't be found, nothing is changed.
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

_pending: dict[str, Callable[[], None]] = {}  # deferred packages whose __init__ has not run


def defer(name: str, **preset: Any) -> bool:
    """Whether `name` is now in sys.modules with its `__init__` deferred."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def run_init() -> None:
        if _pending.pop(name, None) is not None:
            loader.exec_module(module)

    def __getattr__(attr: str) -> Any:  # noqa: N807 - the module-level hook (PEP 562)
        if name not in _pending:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        if not attr.startswith("__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
            # a submodule (`from pyroute2 import config` inside pyroute2): that one alone
            return importlib.import_module(f"{name}.{attr}")
        run_init()
        return getattr(module, attr)

    vars(module).update(preset)
    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    _pending[name] = run_init
    sys.modules[name] = module
    return True


def complete(name: str) -> None:
    """Run a deferred package's `__init__` now, if it has not run yet."""
    run_init = _pending.get(name)
    if run_init is not None:
        run_init()


def forget(name: str) -> None:
    """Drop a package and its submodules from sys.modules (after a deferred import failed:
    the next import runs the package whole, as if it had never been deferred)."""
    _pending.pop(name, None)
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]



async def preload(*names: str) -> None:
    """Import modules in a worker thread, a deferred package whole, so that a function's own
    `from ... import` of them and its use of them afterwards do no import work on the event
    loop (a first import can take ~100 ms)."""
    missing = [n for n in names if n not in sys.modules or n in _pending]
    if missing:
        await asyncio.to_thread(_import_whole, missing)


def _import_whole(names: list[str]) -> None:
    for name in names:
        importlib.import_module(name)
        complete(name)
