"""composer.labels: Docker Compose label keys, values and filters."""
from __future__ import annotations

from composer import labels as L


def test_keys_are_docker_compose_keys() -> None:
    assert L.PROJECT == "com.docker.compose.project"
    assert L.SERVICE == "com.docker.compose.service"
    assert L.CONTAINER_NUMBER == "com.docker.compose.container-number"
    assert L.CONFIG_HASH == "com.docker.compose.config-hash"
    assert L.ONEOFF == "com.docker.compose.oneoff"
    assert L.WORKING_DIR == "com.docker.compose.project.working_dir"
    assert L.CONFIG_FILES == "com.docker.compose.project.config_files"
    assert L.DEPENDS_ON == "com.docker.compose.depends_on"
    assert L.IMAGE == "com.docker.compose.image"
    assert L.VERSION == "com.docker.compose.version"


def test_container_labels_values_and_round_trip() -> None:
    labels = L.container_labels(
        "proj",
        "web",
        3,
        "abc",
        working_dir="/srv/app",
        config_files=["/srv/app/compose.yaml", "/srv/app/compose.override.yaml"],
        depends_on=[L.DependsOnLabel("redis", "service_healthy", True), L.DependsOnLabel("db")],
        image_id="sha256:1",
        user_labels={"team": "a", L.SERVICE: "spoofed"},
    )
    assert labels[L.CONTAINER_NUMBER] == "3"
    assert labels[L.ONEOFF] == "False"
    assert labels[L.SERVICE] == "web"  # ours win over the user's
    assert labels["team"] == "a"
    assert labels[L.CONFIG_FILES] == "/srv/app/compose.yaml,/srv/app/compose.override.yaml"
    assert labels[L.DEPENDS_ON] == "db:service_started:false,redis:service_healthy:true"
    parsed = L.ContainerLabels.parse(labels)
    assert parsed == L.ContainerLabels(
        project="proj",
        service="web",
        number=3,
        config_hash="abc",
        oneoff=False,
        image_id="sha256:1",
        depends_on=(L.DependsOnLabel("db"), L.DependsOnLabel("redis", "service_healthy", True)),
    )


def test_parse_tolerates_foreign_and_partial_labels() -> None:
    assert L.ContainerLabels.parse({"team": "a"}) is None
    parsed = L.ContainerLabels.parse({L.PROJECT: "p", L.SERVICE: "s", L.ONEOFF: "True", L.CONTAINER_NUMBER: "x"})
    assert parsed is not None and parsed.oneoff and parsed.number == 0
    assert L.parse_depends_on("db, cache:service_healthy") == (
        L.DependsOnLabel("db"),
        L.DependsOnLabel("cache", "service_healthy"),
    )


def test_filters() -> None:
    assert L.project_filter("p") == {L.PROJECT: "p", L.ONEOFF: "False"}
    assert L.project_filter("p", oneoff=None) == {L.PROJECT: "p"}
    assert L.service_filter("p", "web", oneoff=True) == {L.PROJECT: "p", L.ONEOFF: "True", L.SERVICE: "web"}
