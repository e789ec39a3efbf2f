"""A busybox root filesystem from the host's static busybox (Debian's busybox-static).

Used for `FROM busybox` when no busybox image is in the store, and by the tests, so the
suite runs offline: one static binary, its applet links, and the few files in /etc that
programs expect.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from runtime.errors import NotFound

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
tty:x:5:
www-data:x:33:
users:x:100:
nogroup:x:65534:
"""


def host_busybox() -> Path:
    for cand in BUSYBOX_CANDIDATES:
        p = Path(cand)
        if p.is_file():
            out = subprocess.run([str(p)], capture_output=True, text=True).stdout
            if "static" in _file_kind(p) or "BusyBox" in out:
                return p
    raise NotFound(
        "no static busybox on this host: install Debian's busybox-static (apt-get install busybox-static)"
    )


def _file_kind(p: Path) -> str:
    with p.open("rb") as f:
        head = f.read(4096)
    return "static" if b"/lib64/ld-linux" not in head and b"/lib/ld-linux" not in head else "dynamic"


def applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def populate_rootfs(root: Path) -> Path:
    """Fill `root` with a working busybox system; returns `root`."""
    bb = host_busybox()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "var/www", "proc",
              "sys", "dev", "home", "var/tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy2(bb, root / "bin/busybox")
    os.chmod(root / "bin/busybox", 0o755)
    for applet in applets(bb):
        link = root / applet
        if applet == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", link)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "etc/hostname").write_text("busybox\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc/resolv.conf").write_text("")
    return root
