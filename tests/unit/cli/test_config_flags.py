"""`config --images/--networks/--hash/--environment/--variables/-o/--no-interpolate`,
through the CLI (no engine needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli import main
from composer.convert import config_hash
from composer.spec import LoadOptions, load_stack

STACK = """
services:
  web: {image: "nginx:${TAG:-1.25}", environment: {A: "${NEED:?set it}"}, networks: [front]}
  app: {build: ., networks: [back]}
networks: {front: {}, back: {}}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "compose.yaml").write_text(STACK)
    monkeypatch.setenv("NEED", "1")
    monkeypatch.setenv("ZZ_FROM_TEST", "yes")
    return tmp_path


def out(capsys: pytest.CaptureFixture[str], folder: Path, *argv: str) -> str:
    assert main(["--project-directory", str(folder), "-p", "p", "config", *argv]) == 0
    return capsys.readouterr().out


def test_lists(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert out(capsys, folder, "--images").split() == ["p-app", "nginx:1.25"]
    assert sorted(out(capsys, folder, "--networks").split()) == ["back", "front"]
    assert "ZZ_FROM_TEST=yes\n" in out(capsys, folder, "--environment")


def test_hash_is_the_label_up_compares(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = load_stack(LoadOptions(working_dir=str(folder), project_name="p"))
    want = {n: config_hash(s) for n, s in stack.services.items()}
    assert out(capsys, folder, "--hash", "*") == f"app {want['app']}\nweb {want['web']}\n"
    assert out(capsys, folder, "--hash", "web") == f"web {want['web']}\n"
    assert main(["--project-directory", str(folder), "config", "--hash", "nope"]) == 1
    assert "no such service: nope" in capsys.readouterr().err


def test_variables_need_no_value_and_o_writes_a_file(
        folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEED")  # required, yet --variables is how one learns that
    lines = out(capsys, folder, "--variables").splitlines()
    assert lines[0].split() == ["NAME", "REQUIRED", "DEFAULT", "VALUE", "ALTERNATE", "VALUE"]
    assert [ln.split() for ln in lines[1:]] == [["NEED", "true"], ["TAG", "false", "1.25"]]
    target = folder / "out.json"
    assert out(capsys, folder, "--variables", "--format", "json", "-o", str(target)) == ""
    assert '"name": "NEED"' in target.read_text()


# as the corpus's stack files write them: an image tag, a required variable, an escaped `$$`,
# a port (Compose's e2e TestLocalComposeConfig), a bind source and a container name
RAW = """
services:
  web:
    image: "nginx:${TAG:-latest}"
    container_name: ${NAME}
    command: ["sh", "-c", "echo $$HOME"]
    environment:
      URL: http://${HOST}:${PORT:-80}/
      NEED: ${NEED:?set it}
    ports: ["${PORT:-8080}:80", "9000:9000"]
    volumes: ["${DATA}/site:/usr/share/nginx/html:ro", "logs:/var/log"]
volumes:
  logs: {}
x-note: ${NOTE}
"""


def test_no_interpolate_keeps_variables_as_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    (tmp_path / "compose.yaml").write_text(RAW)
    monkeypatch.delenv("NEED", raising=False)  # required, yet not substituted: no error
    monkeypatch.setenv("TAG", "1.25")  # set, yet not substituted
    model = yaml.safe_load(out(capsys, tmp_path, "--no-interpolate"))
    web = model["services"]["web"]
    assert web["image"] == "nginx:${TAG:-latest}"
    assert web["container_name"] == "${NAME}"
    assert web["command"] == ["sh", "-c", "echo $$HOME"]  # the escape as written, not `$$$$`
    assert web["environment"] == {"URL": "http://${HOST}:${PORT:-80}/", "NEED": "${NEED:?set it}"}
    assert web["ports"][0] == "${PORT:-8080}:80"
    assert web["ports"][1]["target"] == 9000  # still normalised
    assert web["volumes"][0]["source"] == "${DATA}/site"
    assert web["volumes"][0]["read_only"] is True
    assert web["volumes"][1]["source"] == "logs"
    assert model["volumes"]["logs"]["name"] == "p_logs"
    assert model["x-note"] == "${NOTE}"
    # without the flag the same file is substituted (and NEED is required)
    assert main(["--project-directory", str(tmp_path), "config"]) == 1
    assert "required variable NEED" in capsys.readouterr().err


def test_no_interpolate_names_a_value_it_cannot_normalise(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web: {image: x, cpus: '${CPUS}'}\n")
    assert main(["--project-directory", str(tmp_path), "config", "--no-interpolate"]) == 1
    err = capsys.readouterr().err
    assert "services.web.cpus" in err and "without --no-interpolate" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("entry", "message"), [
    ('ports: ["$${P}:80"]', 'invalid port "${P}:80"'),
    ('volumes: ["$${D}/x:/x"]', 'invalid volume source "${D}/x"'),
    ('container_name: "$${N}"', 'invalid container name "${N}"'),
])
def test_a_literal_variable_is_kept_as_written_only_without_interpolation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, message: str) -> None:
    # `$${P}` is a literal `${P}` once interpolated: no port, path or name, as before
    (tmp_path / "compose.yaml").write_text(f"services:\n  a:\n    image: x\n    {entry}\n")
    assert main(["--project-directory", str(tmp_path), "config"]) == 1
    assert message in capsys.readouterr().err
