"""Secrets and configs the engine makes (runtime.injected): content, owner and mode as the
container sees them, a host file copied afresh at each start, and nothing left behind."""
from __future__ import annotations

import base64
from pathlib import Path

from runtime.engine import Engine
from runtime.types import ContainerSpec, InjectedFile


async def test_files_have_the_content_owner_and_mode_asked_for(engine: Engine, tmp_path: Path) -> None:
    src = tmp_path / "cert.pem"
    src.write_text("v1\n")
    files = (
        InjectedFile("/run/secrets/token", content=base64.b64encode(b"s3cret").decode()),
        InjectedFile("/run/secrets/cert", source=str(src), uid=1000, gid=1001, mode=0o400),
        InjectedFile("/etc/app.conf", content=base64.b64encode(b"debug=1\n").decode(), mode=0o640),
    )
    script = ("for f in /run/secrets/token /run/secrets/cert /etc/app.conf; do "
              "stat -c '%n %u %g %a' $f; cat $f; echo; done; echo x 2>/dev/null > /run/secrets/token || echo ro")
    await engine.create_container(ContainerSpec(name="f", image="busybox", command=("sh", "-c", script),
                                                files=files, user="0"))
    await engine.start_container("f")
    assert await engine.wait_container("f") == 0
    out = "".join([line.data async for line in engine.logs("f")])
    lines = [line for line in out.splitlines() if line]
    assert lines[:6] == ["/run/secrets/token 0 0 444", "s3cret", "/run/secrets/cert 1000 1001 400", "v1",
                         "/etc/app.conf 0 0 640", "debug=1"]
    assert lines[-1] == "ro"  # read-only, as every secret

    src.write_text("v2\n")  # a host file is copied again at the next start
    await engine.start_container("f")
    assert await engine.wait_container("f") == 0
    out = "".join([line.data async for line in engine.logs("f")])
    assert "v2" in out.splitlines()
