"""A test RunStep: overlayfs of the layers in a private mount namespace, then chroot.

`unshare --mount --propagation private` gives the shell its own mount table, so the
overlay and /proc mounts vanish with the process even if the test is killed: nothing to
unmount on the host. The engine's real runner (namespaces, cgroups, network) replaces this.
"""
from __future__ import annotations

import asyncio
import contextlib
import shlex
import tempfile
from collections.abc import Sequence
from pathlib import Path

from runtime.images.build.interfaces import Progress, RunResult

SCRIPT = """
set -e
mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"
[ -d "$4/proc" ] && mount -t proc proc "$4/proc"
cd /
exec env -i {env} chroot {userspec} "$4" /bin/sh -c 'cd "$0" && exec "$@"' {args}
"""


class ChrootRunner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def run(
        self,
        *,
        lowerdirs: Sequence[str],
        upper: str,
        argv: Sequence[str],
        env: Sequence[str],
        cwd: str,
        user: str,
        on_output: Progress,
    ) -> RunResult:
        self.calls.append(list(argv))
        scratch = Path(tempfile.mkdtemp(prefix="run-", dir=Path(upper).parent))
        (scratch / "work").mkdir()
        (scratch / "merged").mkdir()
        script = SCRIPT.format(
            env=" ".join(shlex.quote(e) for e in env),
            userspec=f"--userspec={shlex.quote(user)}" if user else "",
            args=" ".join(shlex.quote(a) for a in [cwd, *argv]),
        )
        lower = ":".join(reversed(list(lowerdirs)))  # overlay wants the top layer first
        proc = await asyncio.create_subprocess_exec(
            "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            lower, upper, str(scratch / "work"), str(scratch / "merged"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        lines: list[str] = []
        assert proc.stdout is not None
        try:
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                lines.append(line)
                on_output(line)
            rc = await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return RunResult(rc, "\n".join(lines[-50:]))
