"""Several processes importing the same layer and tagging at once: one layer, every tag kept."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime.images.store import ImageStore
from runtime.paths import Paths
from tests.unit.images.archives import docker_archive, two_layer_image

WORKER = """
import sys
from pathlib import Path
from runtime.images.importer import load
from runtime.images.store import ImageStore
from runtime.paths import Paths
store = ImageStore(Paths(Path(sys.argv[1]), Path(sys.argv[2])))
for i in range(5):
    load(store, sys.argv[3], tags=[f"w{sys.argv[4]}:{i}"])
"""


def test_parallel_loads(tmp_path: Path) -> None:
    layers, cfg = two_layer_image()
    iid = docker_archive(tmp_path / "img.tar", layers, cfg, ["demo:1"])
    root, run = tmp_path / "state", tmp_path / "run"
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(root), str(run), str(tmp_path / "img.tar"), str(n)],
                         cwd=Path(__file__).parents[3], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    store = ImageStore(Paths(root, run))
    (img,) = store.list()
    assert img.id == iid
    assert len(img.tags) == 1 + 4 * 5
    assert len(store.layers.list()) == 2
    assert not [p for p in store.layers.root.iterdir() if p.name.startswith(".tmp")]
