"""The LNMP example end to end, as the README shows it: build, up, read, write, down, up, down -v.

The first `up` builds three Debian images from scratch (debootstrap + apt-get from the
host's mirror): minutes, not seconds.
"""
from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.conftest import REPO, Env
from tests.ports import free_block


def get(url: str, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.read().decode()
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            if isinstance(e, urllib.error.HTTPError):
                e.close()  # a 502 while php starts holds its connection: unclosed, a warning
            last = e
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer: {last}")


def test_lnmp_stack_serves_php_reading_mariadb(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "lnmp"
    shutil.copytree(REPO / "examples" / "lnmp", d)
    port = free_block(1, host="127.0.0.1")  # the example's 8080 may be taken on the host
    env_file = d / ".env"
    env_file.write_text(env_file.read_text().replace("LNMP_PORT=8080", f"LNMP_PORT={port}"))
    assert f"LNMP_PORT={port}" in env_file.read_text()
    URL = f"http://127.0.0.1:{port}/"
    t0 = time.time()
    env.composer("up", "-d", cwd=d, timeout=2400)
    first_up = time.time() - t0
    page = get(URL)
    assert "Rendered by PHP" in page and "MariaDB" in page, page
    assert "hello from MariaDB" in page

    page = get(URL + "?add=row-written-by-the-test")
    assert "row-written-by-the-test" in page

    env.composer("down", cwd=d)
    t0 = time.time()
    env.composer("up", "-d", cwd=d)
    second_up = time.time() - t0
    page = get(URL)
    assert "row-written-by-the-test" in page, "the named volume did not keep the row"
    assert second_up < 60

    env.composer("down", "-v", cwd=d)
    vols = [p.name for p in (env.root / "volumes").iterdir() if not p.name.startswith(".")]
    assert "lnmp_dbdata" not in vols
    env.composer("up", "-d", cwd=d)
    page = get(URL)
    assert "row-written-by-the-test" not in page and "hello from MariaDB" in page
    env.composer("down", "-v", cwd=d)
    print(f"first up (with builds): {first_up:.1f}s, second up: {second_up:.1f}s")
