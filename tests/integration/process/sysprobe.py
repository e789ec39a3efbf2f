"""Build sysprobe.c (a raw-syscall prober) as a static binary for busybox containers."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("sysprobe.c")


def build(dest: Path) -> Path:
    """Compile the prober to `dest` (static: the container has no libc). Needs gcc and the
    static libc (Debian: gcc, libc6-dev), as the CI machine has."""
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc, "sysprobe needs a C compiler (gcc) and libc6-dev on the test machine"
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([cc, "-O2", "-static", "-o", str(dest), str(SOURCE)], check=True,
                   capture_output=True)
    return dest
