"""Errors of a pull. One base (`RegistryError`); each kind also inherits the engine error
(and builtin) a caller already catches, so `except NotFound` keeps working around `pull()`.

Messages are lowercase, name the image, and say what to do.
"""
from __future__ import annotations

import errno

from runtime.errors import EngineError, InvalidArgument, NotFound


class RegistryError(EngineError):
    """Anything that went wrong talking to a registry."""

    status = 502


class ManifestUnknown(RegistryError, NotFound):
    """The registry has no such repository, tag or digest."""

    status = 404


class Unauthorized(RegistryError, PermissionError):
    """The registry wants credentials we do not have, or refused the ones we sent."""

    status = 401


class RegistryUnreachable(RegistryError, ConnectionError):
    """No connection to the registry: DNS, refused, timed out, TLS."""


class UnsupportedMediaType(RegistryError, InvalidArgument):
    """A manifest, config or layer in a format we do not handle (schema 1, artifacts, ...)."""

    status = 400


class NoMatchingPlatform(RegistryError, NotFound):
    """A manifest list with no entry for linux/<host arch>."""

    status = 404


class DigestMismatch(RegistryError, InvalidArgument):
    """A blob or manifest whose sha256 is not what its descriptor says."""


def unreachable(image: str, where: str, err: BaseException) -> RegistryUnreachable:
    """The error for a connection that failed, saying why in words (DNS, refused, timeout)."""
    text = str(err) or type(err).__name__
    low = text.lower().replace("ssl:default", "").replace("ssl:false", "")
    code = getattr(err, "errno", None)
    if "name resolution" in low or "name or service not known" in low or "nodename" in low \
            or "dns" in type(err).__name__.lower():
        why = "its name does not resolve (no network or no DNS here?)"
    elif code in (errno.ENETUNREACH, errno.EHOSTUNREACH) or "unreachable" in low \
            or "no route" in low:
        why = "the network is unreachable (no network here?)"
    elif code == errno.ECONNREFUSED or "refused" in low or "connect call failed" in low:
        why = "the connection was refused (is the registry running, on that port?)"
    elif isinstance(err, TimeoutError) or "timeout" in low or "timed out" in low:
        why = "the connection timed out (no network here, or a firewall?)"
    elif "ssl" in low or "certificate" in low:
        why = (f"the TLS handshake failed ({text}); for a plain-http registry list it as "
               "insecure")
    else:
        why = text
    return RegistryUnreachable(
        f"cannot pull {image}: registry {where} is unreachable: {why}; check the network, "
        "or load the image from a file with `composer image load FILE`",
        subject=image,
    )


__all__ = [
    "DigestMismatch",
    "ManifestUnknown",
    "NoMatchingPlatform",
    "RegistryError",
    "RegistryUnreachable",
    "Unauthorized",
    "UnsupportedMediaType",
    "unreachable",
]
