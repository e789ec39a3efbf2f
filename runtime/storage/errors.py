"""Errors of the storage package: the engine's error base, plus one for broken stores."""
from __future__ import annotations

from runtime.errors import Conflict, EngineError, InvalidArgument, NotFound

__all__ = ["Conflict", "InvalidArgument", "NotFound", "StorageError", "UnsafeArchive"]


class StorageError(EngineError, OSError):
    """The store on disk is broken or the kernel refused (mount, xattr): not the user's input."""

    status = 500


class UnsafeArchive(InvalidArgument):
    """A layer tar tries to escape its directory (absolute path, `..`, write through a symlink)."""
