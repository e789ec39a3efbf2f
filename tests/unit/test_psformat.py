"""composer.cli.psformat: `ps` fields, Docker's words and Compose's formats, on fixed clocks."""
from __future__ import annotations

import json

import pytest

from composer import labels as L
from composer.cli.psformat import (
    FormatError,
    display_ports,
    go_json,
    go_quote,
    human_duration,
    render,
    status_text,
    summary,
    tabwrite,
)
from runtime.api import ContainerInfo, State
from runtime.types import ContainerSpec, Mount, NetworkAttachment, PortBinding

NOW = 1_000_000.0
JSON_KEYS = ["Command", "CreatedAt", "ExitCode", "Health", "ID", "Image", "Labels", "LocalVolumes",
             "Mounts", "Name", "Names", "Networks", "Ports", "Project", "Publishers", "RunningFor",
             "Service", "Size", "State", "Status"]


def info(state: State = "running", *, health: str = "", exit_code: int | None = None,
         started: float = NOW - 3, finished: float | None = None,
         ports: tuple[PortBinding, ...] = (), command: tuple[str, ...] = ("sleep", "600")) -> ContainerInfo:
    labels = L.container_labels("p", "web", 1, "h")
    spec = ContainerSpec(name="p-web-1", image="busybox", labels=labels,
                         networks=(NetworkAttachment("p_default"),))
    return ContainerInfo(
        id="a" * 64, name="p-web-1", image="busybox", spec=spec, state=state, health=health,  # type: ignore[arg-type]
        exit_code=exit_code, created_at=NOW - 120, started_at=started, finished_at=finished,
        ports=ports, command=command,
        mounts=(Mount("volume", "/data", "p_data"), Mount("bind", "/src", "/home/me/src"),
                Mount("tmpfs", "/tmp")),
    )


@pytest.mark.parametrize(("seconds", "words"), [
    (0.4, "Less than a second"), (1, "1 second"), (3, "3 seconds"), (59, "59 seconds"),
    (60, "About a minute"), (150, "2 minutes"), (3600, "About an hour"), (3 * 3600, "3 hours"),
    (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
    (800 * 86400, "2 years"),
])
def test_human_duration_as_go_units(seconds: float, words: str) -> None:
    assert human_duration(seconds) == words


@pytest.mark.parametrize(("c", "text"), [
    (info(), "Up 3 seconds"),
    (info(health="healthy"), "Up 3 seconds (healthy)"),
    (info(health="starting"), "Up 3 seconds (health: starting)"),
    (info(health="unhealthy"), "Up 3 seconds (unhealthy)"),
    (info("paused"), "Up 3 seconds (Paused)"),
    (info("exited", exit_code=1, finished=NOW - 130), "Exited (1) 2 minutes ago"),
    (info("exited", exit_code=0, finished=NOW - 1), "Exited (0) 1 second ago"),
    (info("created", started=None), "Created"),  # type: ignore[arg-type]
    (info("dead"), "Dead"),
    (info("restarting", exit_code=2, finished=NOW - 5), "Restarting (2) 5 seconds ago"),
])
def test_status_words_as_docker(c: ContainerInfo, text: str) -> None:
    assert status_text(c, NOW) == text


def test_ports_as_docker_displays_them() -> None:
    assert display_ports([("0.0.0.0", 80, 8080, "tcp")]) == "0.0.0.0:8080->80/tcp"
    assert display_ports([("0.0.0.0", 81, 81, "tcp"), ("0.0.0.0", 80, 80, "tcp")]) == "0.0.0.0:80-81->80-81/tcp"
    assert display_ports([("::", 80, 8080, "tcp")]) == "[::]:8080->80/tcp"
    assert display_ports([("", 53, 0, "udp")]) == "53/udp"
    assert display_ports([]) == ""


def test_command_is_quoted_and_shortened_as_compose() -> None:
    assert go_quote('sh -c "x"\n') == '"sh -c \\"x\\"\\n"'
    row = summary(info(command=("docker-entrypoint.sh", "mysqld")), "p", now=NOW)
    assert row["Command"] == '"docker-entrypoint.s…"'
    assert summary(info(command=("docker-entrypoint.sh", "mysqld")), "p", trunc=False,
                   now=NOW)["Command"] == '"docker-entrypoint.sh mysqld"'


def test_summary_fields_as_compose_ps_json() -> None:
    row = summary(info(ports=(PortBinding(80, "tcp", "127.0.0.1", 8080),)), "p", now=NOW)
    assert sorted(row) == JSON_KEYS
    assert row["ID"] == "a" * 12 and row["Name"] == row["Names"] == "p-web-1"
    assert row["Service"] == "web" and row["Project"] == "p" and row["State"] == "running"
    assert row["RunningFor"] == "2 minutes ago" and row["Status"] == "Up 3 seconds"
    assert row["Publishers"] == [{"URL": "127.0.0.1", "TargetPort": 80, "PublishedPort": 8080,
                                  "Protocol": "tcp"}]
    assert row["Ports"] == "127.0.0.1:8080->80/tcp"
    assert row["Networks"] == "p_default" and row["LocalVolumes"] == "1"
    assert row["Mounts"] == "p_data,/home/me/src"
    assert "com.docker.compose.service=web" in row["Labels"].split(",")
    assert row["Size"] == "0B" and row["ExitCode"] == 0 and row["Health"] == ""
    assert summary(info(), "p", now=NOW)["Publishers"] is None  # null when none, as Compose
    exited = summary(info("exited", exit_code=3, health="healthy", finished=NOW), "p", now=NOW)
    assert exited["ExitCode"] == 3 and exited["Health"] == ""  # health only while running
    assert summary(info(), "p", trunc=False, now=NOW)["ID"] == "a" * 64


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json({"Ports": "0.0.0.0:80->80/tcp", "A": "<&>"}) == \
        '{"Ports":"0.0.0.0:80-\\u003e80/tcp","A":"\\u003c\\u0026\\u003e"}'


def lines(fmt: str | None, rows: list[dict[str, object]]) -> list[str]:
    out: list[str] = []
    render(rows, [{"com.docker.compose.service": "web"}] * len(rows), fmt, out.append)
    return "".join(out).splitlines()


def test_render_formats() -> None:
    rows = [summary(info(), "p", now=NOW), summary(info("exited", exit_code=1, finished=NOW - 60), "p", now=NOW)]
    table = lines(None, rows)
    assert table[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert table[1].startswith("p-web-1   busybox   \"sleep 600\"   web       2 minutes ago   Up 3 seconds")
    assert "Exited (1) About a minute ago" in table[2]
    js = lines("json", rows)
    assert len(js) == 2 and list(json.loads(js[0])) == JSON_KEYS
    assert lines("{{.Name}} {{.State}}", rows) == ["p-web-1 running", "p-web-1 exited"]
    assert lines("table {{.Name}}\\t{{.State}}", rows) == [
        "NAME      STATE", "p-web-1   running", "p-web-1   exited"]
    assert lines('{{.Label "com.docker.compose.service"}}|{{json .ExitCode}}', rows[:1]) == ["web|0"]
    assert lines("{{json .Publishers}}", rows[:1]) == ["null"]
    with pytest.raises(FormatError, match=r"no field \.Nope"):
        lines("{{.Nope}}", rows)
    assert lines(None, [])[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]


def test_tabwriter_as_docker_configures_it() -> None:
    # cells padded to the widest + 3, at least 10; the last cell as is
    assert tabwrite(["A\tBB\tC", "longer-cell\tx\ty"]) == [
        "A" + " " * 13 + "BB" + " " * 8 + "C", "longer-cell" + " " * 3 + "x" + " " * 9 + "y"]
