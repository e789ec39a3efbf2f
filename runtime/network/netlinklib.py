"""The two names composerd uses of pyroute2, without the rest of pyroute2.

pyroute2's package `__init__` imports every part of it (NDB with sqlite, IPDB, nl80211,
wireguard, ipvs, plan9, its mock of netlink with unittest.mock, ...): ~205 modules and
~11 MiB of memory, where the rtnetlink client we use (`pyroute2.iproute.linux`) and its
netlink code are ~125 modules and ~5 MiB. composerd keeps every module it imported for its
lifetime, so that is ~6 MiB of its resident memory (issue 15: <= 40 MiB with 10 containers).

So the `pyroute2` package module is put in sys.modules without running its `__init__`
(Python then imports the submodules we name from its path as usual), and the first access
to an attribute of it that is not a submodule -- `from pyroute2 import NetNS` in a test,
`pyroute2.IPRoute` -- runs the real `__init__` into that same module object and answers from it: whoever
wants the whole of pyroute2 gets it, a little later. When pyroute2 is imported already, or
can't be found, nothing is changed (the import below then says what is wrong).
"""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def _deferred_package(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    state = {"loaded": False}

    def __getattr__(attr: str) -> Any:  # noqa: N807 - the module-level hook (PEP 562)
        if state["loaded"]:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        if not attr.startswith("__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
            # a submodule (`from pyroute2 import config` inside pyroute2): that one alone
            return importlib.import_module(f"{name}.{attr}")
        state["loaded"] = True
        assert spec.loader is not None
        spec.loader.exec_module(module)
        return getattr(module, attr)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = module


def full_package_loaded(module: ModuleType) -> bool:
    """Whether pyroute2's own `__init__` has run (for the tests)."""
    return "IPRoute" in vars(module)


_deferred_package("pyroute2")

from pyroute2.iproute.linux import AsyncIPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["AsyncIPRoute", "NetlinkError"]
