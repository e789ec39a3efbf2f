"""Pack a directory (a layer, or a build's overlay upper dir) into a deterministic layer tar.

Entries are sorted, owner names are left empty and mtimes are whole seconds, so the same tree
gives the same bytes and so the same diff_id. Overlay whiteouts become their OCI spelling:
a 0/0 character device NAME becomes an empty `.wh.NAME`, an opaque directory gets a
`.wh..wh..opq` entry right after it. Overlay's own xattrs are never packed; sockets are
skipped (as Docker).
"""
from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from typing import BinaryIO

from runtime.storage import whiteout


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(whiteout.OVERLAY_XATTR_PREFIXES):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.mtime = int(st.st_mtime)
    return ti


Skip = Callable[[str, os.stat_result, str], bool]  # (relative name, lstat, path) -> leave out


def pack_dir(src: str, out: BinaryIO, skip: Skip | None = None) -> None:
    """Write `src`'s content (not `src` itself) as a PAX tar to `out`, without the entries
    `skip` names."""
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _pack(tf, src, "", seen, skip)


def _pack(tf: tarfile.TarFile, root: str, rel: str, seen: dict[tuple[int, int], str],
          skip: Skip | None = None) -> None:
    base = os.path.join(root, rel) if rel else root
    for name in sorted(os.listdir(base)):
        arc = f"{rel}/{name}" if rel else name
        path = os.path.join(base, name)
        st = os.lstat(path)
        mode = st.st_mode
        if skip is not None and skip(arc, st, path):
            continue
        if whiteout.is_whiteout_stat(st):
            ti = _info(f"{rel}/{whiteout.WH_PREFIX}{name}" if rel else whiteout.WH_PREFIX + name, st)
            ti.mode = 0o644
            tf.addfile(ti)
            continue
        ti = _info(arc, st)
        ti.pax_headers = _xattrs(path)
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
            if whiteout.is_opaque(path):
                opq = _info(f"{arc}/{whiteout.WH_OPAQUE}", st)
                opq.mode = 0o644
                tf.addfile(opq)
            _pack(tf, root, arc, seen, skip)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen:
                ti.type = tarfile.LNKTYPE
                ti.linkname = seen[key]
                tf.addfile(ti)
                continue
            seen[key] = arc
            ti.size = st.st_size
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with open(fd, "rb") as f:
                tf.addfile(ti, f)
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
            tf.addfile(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tf.addfile(ti)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            tf.addfile(ti)
        # sockets: skipped
