"""The security probe rig: one composerd world per module (tests/reliability's `open_rig`, so the
same leak snapshot closes it), holding two stacks:

    probes   `plain`: a default busybox container (what every probe must NOT be able to do)
             `priv`:  `privileged: true` (the control: the same probe succeeds there)
    other    `web`:  an httpd on an unrelated stack (the target of cross-stack probes)
             `peer`: a client on that stack (the control: `web` is reachable from its own stack)

The sysprobe static binary (tests/integration/process/sysprobe.c) is mounted read-only at
/probe/sysprobe in every container, for the probes that are a single raw system call.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.process.sysprobe import build
from tests.reliability.conftest import Rig, open_rig

PROBES = """
services:
  plain:
    image: busybox
    init: false
    command: ["sleep", "3600"]
    volumes: ["{probe}:/probe:ro"]
  priv:
    image: busybox
    privileged: true
    init: false
    command: ["sleep", "3600"]
    volumes: ["{probe}:/probe:ro"]
"""

OTHER = """
services:
  web:
    image: busybox
    init: false
    command: ["httpd", "-f", "-p", "8080", "-h", "/probe"]
    volumes: ["{probe}:/probe:ro"]
  peer:
    image: busybox
    init: false
    command: ["sleep", "3600"]
    volumes: ["{probe}:/probe:ro"]
"""


@dataclass
class Stacks:
    rig: Rig
    probes: Path
    other: Path
    probe_dir: Path

    def sh(self, svc: str, script: str) -> subprocess.CompletedProcess[str]:
        """`script` in service `svc` (plain, priv: the probes stack; web, peer: the other one)."""
        d = self.probes if svc in ("plain", "priv") else self.other
        r = self.rig.composer("exec", "-T", svc, "sh", "-c", script, cwd=d, check=False,
                              timeout=60)
        # 255: the CLI's exec stream ended without the EXIT frame (composer/cli/stdio.session
        # returns 255 then), not the script's answer (no probe script exits 255). Since main's
        # live-stream exec this happens now and then, with or without the output before it;
        # a probe must never count it as "denied".
        assert r.returncode != 255, (
            f"composer exec {svc}: the exec stream ended without an exit code\n"
            f"stdout: {r.stdout!r}\nstderr: {r.stderr!r}\n{self.rig.daemon_log(20)}")
        return r

    def host_pid(self, svc: str) -> int:
        d = self.probes if svc in ("plain", "priv") else self.other
        out = self.rig.composer("ps", "--format", "json", "--no-trunc", svc, cwd=d).stdout
        cid = json.loads(out.splitlines()[0])["ID"]
        data = json.loads((self.rig.env.root / "containers" / cid / "process.json").read_text())
        return int(data["pid"])

    def ip(self, svc: str) -> str:
        out = self.sh(svc, "ip -4 -o addr show eth0").stdout.split()
        return out[out.index("inet") + 1].split("/")[0]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    probe_dir = tmp_path_factory.mktemp("secprobe")
    build(probe_dir / "sysprobe")
    (probe_dir / "index.html").write_text("cmp-other-stack\n")
    with open_rig(prefix="cmpsec") as rig:
        probes = rig.project_dir(PROBES.format(probe=probe_dir), name="secprobes")
        other = rig.project_dir(OTHER.format(probe=probe_dir), name="secother")
        try:
            rig.composer("up", "-d", cwd=probes)
            rig.composer("up", "-d", cwd=other)
            yield Stacks(rig, probes, other, probe_dir)
        finally:
            rig.composer("down", "-t", "1", cwd=probes, check=False)
            rig.composer("down", "-t", "1", cwd=other, check=False)
    shutil.rmtree(probe_dir, ignore_errors=True)
