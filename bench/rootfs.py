"""One busybox root filesystem for every peer: a directory, an OCI bundle, a tarball.

Made with `runtime.images.busybox.populate_rootfs` — the same content as the `busybox`
image our engine makes from the host's busybox-static — plus `/usr/lib/os-release`, which
systemd-nspawn insists on (it is one small file; nothing else reads it).
"""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from bench.oci import like_ours
from runtime.images.busybox import populate_rootfs

OS_RELEASE = 'NAME="busybox"\nID=busybox\nPRETTY_NAME="busybox (composer bench)"\n'
PEER_CGROUP = f"composer-bench-peer-{os.getpid()}"  # the peers' cgroups (this run's); removed after


@dataclass(frozen=True)
class Bundle:
    dir: Path  # OCI bundle: config.json, rootfs/ (the lower dir), merged/ (root.path)

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def tarball(self) -> Path:
        return self.dir.parent / "busybox-rootfs.tar"


def make_rootfs(root: Path) -> Path:
    populate_rootfs(root)
    (root / "usr/lib").mkdir(parents=True, exist_ok=True)
    (root / "usr/lib/os-release").write_text(OS_RELEASE)
    return root


def oci_config(template: dict[str, object], args: list[str], cgroup: str) -> dict[str, object]:
    """`runc spec`'s template with our process and a cgroup under PEER_CGROUP."""
    cfg: dict[str, object] = json.loads(json.dumps(template))
    process = cfg["process"]
    assert isinstance(process, dict)
    process["terminal"] = False
    process["args"] = args
    linux = cfg.setdefault("linux", {})
    assert isinstance(linux, dict)
    linux["cgroupsPath"] = f"/{PEER_CGROUP}/{cgroup}"
    return cfg


def make_bundle(workdir: Path, runc: str | None) -> Bundle:
    """rootfs + tarball always; config.json (`runc spec`'s, given our container's features by
    bench/oci.py: seccomp, caps, cgroupns, /etc files, an overlay root at `merged/` that
    `oci.overlay_root` mounts per run over `rootfs/`) when runc is installed."""
    bundle = Bundle(workdir / "bundle")
    make_rootfs(bundle.rootfs)
    with tarfile.open(bundle.tarball, "w") as tar:
        tar.add(bundle.rootfs, arcname=".")
    if runc:
        subprocess.run([runc, "spec"], cwd=bundle.dir, check=True, capture_output=True)
        template = json.loads((bundle.dir / "config.json").read_text())
        cfg = like_ours(oci_config(template, ["/bin/true"], "bench"), bundle.dir)
        (bundle.dir / "config.json").write_text(json.dumps(cfg, indent=1))
    return bundle
