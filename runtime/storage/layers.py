"""Content-addressed layer store: one directory per layer, keyed by its diff_id.

    <root>/<hex>/layer.json   Layer metadata (diff_id, digest, size, compression)
    <root>/<hex>/layer.tar    the uncompressed tar (sha256 = diff_id), kept for export/save
    <root>/<hex>/diff/        the extracted tree, whiteouts in overlay form: an overlay lowerdir
    <root>/.tmp-<pid>-<rand>  work in progress; renamed into place, so a crash leaves no half layer

Dedupe is by diff_id: adding the same content twice returns the existing layer. Who uses a
layer is the image store's business (it refcounts); `remove` here just removes.
"""
from __future__ import annotations

import builtins
import bz2
import contextlib
import errno
import gzip
import hashlib
import lzma
import os
import re
import secrets
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from runtime.storage.errors import InvalidArgument, NotFound, StorageError
from runtime.storage.fsutil import atomic_write_json, read_json, remove_tree
from runtime.storage.tarextract import extract_tar
from runtime.storage.tarpack import Skip, pack_dir

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Layer:
    diff_id: str  # sha256 of the uncompressed tar
    digest: str  # sha256 of the blob as it came (compressed); = diff_id when uncompressed
    size: int  # bytes of regular-file content
    path: str  # the extracted directory: an overlay lowerdir
    compression: str = "none"  # none | gzip | bzip2 | xz | zstd

    @property
    def hex(self) -> str:
        return self.diff_id.split(":", 1)[1]


def check_digest(digest: str, what: str = "layer") -> str:
    if not DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid {what} digest {digest!r}: expected sha256:<64 hex digits>")
    return digest


class _HashingWriter:
    """A write-only file that hashes what goes through it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.out.write(data)


class _HashingReader:
    """Reads a raw stream, hashing every byte; the first bytes can be peeked for the magic."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.buf = b""

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n:
            more = self.raw.read(n - len(self.buf))
            if not more:
                break
            self.sha.update(more)
            self.buf += more
        return self.buf[:n]

    def read(self, n: int = -1) -> bytes:
        if self.buf:
            out, self.buf = (self.buf, b"") if n < 0 or n >= len(self.buf) else (self.buf[:n], self.buf[n:])
            return out
        data = self.raw.read() if n < 0 else self.raw.read(n)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        self.buf = b""
        while self.read(_CHUNK):
            pass


def _detect(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return "none"


def _decompressor(kind: str, src: _HashingReader) -> IO[bytes]:
    raw = cast(IO[bytes], src)
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    if kind == "zstd":
        try:
            import zstandard
        except ImportError as e:
            raise InvalidArgument(
                "layer is zstd-compressed: install the python `zstandard` module to import it"
            ) from e
        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(raw))
    return raw


class LayerStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_stale_tmp()

    # -- lookups --------------------------------------------------------------------------
    def _dir(self, diff_id: str) -> Path:
        return self.root / check_digest(diff_id).split(":", 1)[1]

    def exists(self, diff_id: str) -> bool:
        return (self._dir(diff_id) / "layer.json").is_file()

    def get(self, diff_id: str) -> Layer:
        d = self._dir(diff_id)
        try:
            meta = read_json(d / "layer.json")
        except FileNotFoundError:
            raise NotFound(
                f"layer {diff_id} not found: load the image that contains it again "
                "(composer image load FILE)",
                subject=diff_id,
            ) from None
        return Layer(path=str(d / "diff"), **meta)

    def list(self) -> builtins.list[Layer]:
        out = []
        for d in sorted(self.root.iterdir()):
            if not d.name.startswith(".") and (d / "layer.json").is_file():
                out.append(self.get("sha256:" + d.name))
        return out

    def export_tar(self, diff_id: str) -> Path:
        """Path of the layer's uncompressed tar (sha256 of its bytes is `diff_id`); read-only."""
        self.get(diff_id)
        return self._dir(diff_id) / "layer.tar"

    # -- adding ---------------------------------------------------------------------------
    def add_tar(
        self,
        src: str | os.PathLike[str] | IO[bytes],
        *,
        expected_diff_id: str | None = None,
        expected_digest: str | None = None,
        max_bytes: int | None = None,
    ) -> Layer:
        """Add a (possibly compressed) layer tar; verify digests when given; dedupe by diff_id.
        `max_bytes`: refuse a layer larger than that once decompressed (a gzip bomb)."""
        if expected_diff_id:
            check_digest(expected_diff_id)
            if self.exists(expected_diff_id) and expected_digest is None:
                return self.get(expected_diff_id)
        tmp = self._tmpdir()
        try:
            if isinstance(src, (str, os.PathLike)):
                with open(src, "rb") as f:
                    diff_id, digest, kind = self._spool(f, tmp / "layer.tar", max_bytes)
            else:
                diff_id, digest, kind = self._spool(src, tmp / "layer.tar", max_bytes)
            if expected_digest and digest != expected_digest:
                raise InvalidArgument(
                    f"layer blob digest mismatch: expected {expected_digest}, got {digest}: "
                    "the archive is corrupt or was modified; download or save it again"
                )
            if expected_diff_id and diff_id != expected_diff_id:
                raise InvalidArgument(
                    f"layer diff_id mismatch: expected {expected_diff_id}, got {diff_id}: "
                    "the archive is corrupt or was modified; download or save it again"
                )
            return self._commit(tmp, diff_id, digest, kind)
        except tarfile.TarError as e:
            raise InvalidArgument(f"layer is not a valid tar archive ({e}): check the file") from e
        except (EOFError, gzip.BadGzipFile, lzma.LZMAError) as e:
            raise InvalidArgument(f"layer archive is truncated or corrupt ({e}): check the file") from e
        finally:
            remove_tree(tmp)

    def add_dir(self, path: str | os.PathLike[str], skip: Skip | None = None) -> Layer:
        """Make a layer of a ready directory (e.g. a build step's overlay upper dir), without
        the entries `skip` names."""
        if not os.path.isdir(path):
            raise NotFound(f"cannot make a layer of {path}: not a directory")
        tmp = self._tmpdir()
        try:
            with open(tmp / "layer.tar", "wb") as f:
                hashing = _HashingWriter(f)
                pack_dir(os.fspath(path), hashing, skip)  # type: ignore[arg-type]
            diff_id = "sha256:" + hashing.sha.hexdigest()
            return self._commit(tmp, diff_id, diff_id, "none")
        finally:
            remove_tree(tmp)

    def remove(self, diff_id: str) -> None:
        """Remove the layer (idempotent). The caller (image store) checks it is unreferenced."""
        d = self._dir(diff_id)
        if not d.exists():
            return
        doomed = self.root / f".tmp-{os.getpid()}-del-{secrets.token_hex(4)}"
        try:
            os.rename(d, doomed)  # vanish atomically, then delete at leisure
        except FileNotFoundError:
            return
        remove_tree(doomed)

    # -- internals ------------------------------------------------------------------------
    def _commit(self, tmp: Path, diff_id: str, digest: str, kind: str) -> Layer:
        """Extract tmp/layer.tar into tmp/diff and rename tmp into place (or dedupe)."""
        if self.exists(diff_id):
            return self.get(diff_id)
        try:
            (tmp / "diff").mkdir()
            with tarfile.open(tmp / "layer.tar", "r:") as tf:
                stats = extract_tar(tf, str(tmp / "diff"))
        except tarfile.TarError as e:
            raise InvalidArgument(f"layer is not a valid tar archive ({e}): check the file") from e
        meta = {"diff_id": diff_id, "digest": digest, "size": stats.bytes, "compression": kind}
        atomic_write_json(tmp / "layer.json", meta)
        try:
            os.rename(tmp, self._dir(diff_id))
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # another process added the same layer meanwhile: theirs is as good as ours
        return self.get(diff_id)

    def _spool(self, raw: IO[bytes], out: Path, max_bytes: int | None = None) -> tuple[str, str, str]:
        """Copy the decompressed stream to `out`; return (diff_id, blob digest, compression)."""
        reader = _HashingReader(raw)
        kind = _detect(reader.peek(6))
        stream = _decompressor(kind, reader)
        tar_sha = hashlib.sha256()
        written = 0
        with open(out, "wb") as f:
            while chunk := stream.read(_CHUNK):
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    raise InvalidArgument(f"a layer holds more than {max_bytes} bytes once "
                                          "decompressed: refused (the archive may be a bomb)")
                tar_sha.update(chunk)
                f.write(chunk)
        reader.drain()
        return "sha256:" + tar_sha.hexdigest(), "sha256:" + reader.sha.hexdigest(), kind

    def _tmpdir(self) -> Path:
        tmp = self.root / f".tmp-{os.getpid()}-{secrets.token_hex(6)}"
        tmp.mkdir(mode=0o700)
        return tmp

    def _clean_stale_tmp(self) -> None:
        """Remove work dirs of processes that died mid-add (their pid is in the name)."""
        for d in self.root.glob(".tmp-*"):
            try:
                pid = int(d.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # still alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            with contextlib.suppress(OSError):
                remove_tree(d)


__all__ = ["Layer", "LayerStore", "StorageError", "check_digest"]
