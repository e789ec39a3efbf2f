"""The parts of aiohttp composerd serves with, without aiohttp's HTTP client.

aiohttp's package `__init__` imports its whole client side (connector, cookie jar, client
requests and websockets, tracing, resolver, ...) before anything else: ~5 MiB of composerd's
resident memory that its server never uses (issue 15: <= 40 MiB with 10 containers). So the
`__init__` is deferred (runtime.deferredpkg) and only the server's modules are imported. The
one attribute those read from the package itself, `__version__`, is preset from the source of
that `__init__`. Whoever asks later for the client (`aiohttp.ClientSession` in
runtime.images.registry, on a pull) gets the whole package then.

If a later aiohttp needs more of its `__init__` than that, the deferred import fails and
aiohttp is imported whole, as before: more memory, the same behaviour.
"""
from __future__ import annotations

import importlib.util
import re

from runtime import deferredpkg

_VERSION = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.M)


def _defer_aiohttp() -> None:
    """aiohttp's __init__ deferred, its __version__ preset from its source (when found)."""
    spec = importlib.util.find_spec("aiohttp")
    if spec is None or spec.origin is None:
        return
    try:
        with open(spec.origin, encoding="utf-8") as f:
            found = _VERSION.search(f.read())
    except OSError:
        return
    if found is not None:
        deferredpkg.defer("aiohttp", __version__=found.group(1))


_defer_aiohttp()
try:
    from aiohttp import web
    from aiohttp.http import WSCloseCode, WSMsgType
except ImportError:  # the server needed more of aiohttp's __init__: aiohttp whole, as before
    deferredpkg.forget("aiohttp")
    from aiohttp import web
    from aiohttp.http import WSCloseCode, WSMsgType

__all__ = ["WSCloseCode", "WSMsgType", "web"]
