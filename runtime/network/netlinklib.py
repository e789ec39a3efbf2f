"""The two names composerd uses of pyroute2, without the rest of pyroute2.

pyroute2's package `__init__` imports every part of it (NDB with sqlite, IPDB, nl80211,
wireguard, ipvs, plan9, its mock of netlink with unittest.mock, ...): ~205 modules and
~11 MiB of memory, where the rtnetlink client we use (`pyroute2.iproute.linux`) and its
netlink code are ~125 modules and ~5 MiB. So its `__init__` is deferred (runtime.deferredpkg):
`from pyroute2 import NetNS` in a test, or `pyroute2.IPRoute`, still gets the whole package.
"""
from __future__ import annotations

from types import ModuleType

from runtime import deferredpkg


def full_package_loaded(module: ModuleType) -> bool:
    """Whether pyroute2's own `__init__` has run (for the tests)."""
    return "IPRoute" in vars(module)


deferredpkg.defer("pyroute2")

from pyroute2.iproute.linux import AsyncIPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["AsyncIPRoute", "NetlinkError"]
