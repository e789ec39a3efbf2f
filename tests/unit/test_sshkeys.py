"""composer.sshkeys: key files of build.ssh served by an OpenSSH agent started for the build
(as BuildKit's CLI serves them from its own), gone when the build ends; a file ssh-add
refuses is one line with ssh-add's reason."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from composer.errors import SpecError
from composer.spec import LoadOptions, load_stack
from composer.sshkeys import key_agents


def _stack(project: Path, entry: str):  # type: ignore[no-untyped-def]
    (project / "compose.yaml").write_text(f"services: {{app: {{build: {{context: ., ssh: ['{entry}']}}}}}}\n")
    return load_stack(LoadOptions(environ={}, working_dir=str(project)))


async def test_a_key_file_is_served_by_an_agent_for_the_build(tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "build-key",
                    "-f", str(tmp_path / "id_ed25519")], check=True)
    stack = _stack(tmp_path, "git=./id_ed25519")
    async with key_agents(stack, "app") as agents:
        sock = agents["git"]
        listed = subprocess.run(["ssh-add", "-l"], env={**os.environ, "SSH_AUTH_SOCK": sock},
                                capture_output=True, text=True, check=True)
        assert "build-key" in listed.stdout and "ED25519" in listed.stdout
    assert not os.path.exists(sock) and not os.path.exists(os.path.dirname(sock))


async def test_no_key_files_start_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/nonexistent")
    stack = _stack(tmp_path, "plain=/dev/null")  # not a socket nor a key file
    with pytest.raises(SpecError, match='ssh agent "plain": /dev/null is neither one agent socket nor key files'):
        async with key_agents(stack, "app"):
            pass


async def test_a_file_ssh_add_refuses_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "fake_rsa").write_text("not a key\n")
    os.chmod(tmp_path / "fake_rsa", 0o600)
    stack = _stack(tmp_path, "fake-ssh=./fake_rsa")
    with pytest.raises(SpecError) as e:
        async with key_agents(stack, "app"):
            pass
    text = str(e.value)
    assert text.startswith("compose.yaml: services.app.build.ssh: "), text
    assert 'ssh agent "fake-ssh": ssh-add' in text and "failed:" in text and "\n" not in text
