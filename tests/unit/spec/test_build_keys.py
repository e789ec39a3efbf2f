"""`build:` from the stack file to the engine's BuildRequest: every key Compose defines either
reaches the builder or is refused with the key named (issue 14: they were dropped)."""
from __future__ import annotations

import pytest

from composer.convert import build_request, ssh_sources
from composer.errors import SpecError
from runtime.api import BuildRequest

from .conftest import Loader

STACK = """
services:
  app:
    image: app:1
    build:
      context: ./src
      dockerfile_inline: |
        FROM busybox AS base
        ARG FROM_FILE=default
        RUN echo $$FROM_FILE > /arg
      target: base
      args: [FROM_FILE=file, FROM_ENV, UNSET_ARG]
      labels: {org.example.team: web}
      tags: ["app:1", "registry.local/app:1"]
      network: none
      shm_size: 128m
      extra_hosts: ["db.local:10.1.2.3", "cache.local=10.1.2.4"]
      no_cache: true
      pull: true
"""


def test_every_build_key_reaches_the_build_request(load: Loader, project) -> None:  # type: ignore[no-untyped-def]
    stack = load(STACK, environ={"FROM_ENV": "from-environment"})
    req = build_request(stack, "app", "app:1")
    assert req == BuildRequest(
        context=str(project / "src"), dockerfile="Dockerfile", tag="app:1", target="base",
        # FROM_ENV takes its value from the environment; UNSET_ARG has none: the Dockerfile's
        # default applies (Compose's resolveAndMergeBuildArgs)
        build_args={"FROM_FILE": "file", "FROM_ENV": "from-environment"},
        no_cache=True,
        # `$$` is Compose's escape: the builder sees `$FROM_FILE`
        dockerfile_inline="FROM busybox AS base\nARG FROM_FILE=default\nRUN echo $FROM_FILE > /arg\n",
        tags=("registry.local/app:1",), labels={"org.example.team": "web"}, pull=True,
        network="none", shm_size=128 << 20,
        extra_hosts=(("db.local", "10.1.2.3"), ("cache.local", "10.1.2.4")),
    )


def test_dotenv_values_reach_build_args(load: Loader, write) -> None:  # type: ignore[no-untyped-def]
    write(".env", "FROM_ENV=from-dotenv\n")
    stack = load("services: {app: {build: {context: ., args: {FROM_ENV: null, KEPT: ''}}}}")
    assert build_request(stack, "app", "t").build_args == {"FROM_ENV": "from-dotenv", "KEPT": ""}


def test_git_context_is_refused_at_build_not_at_load(load: Loader) -> None:
    stack = load("services: {app: {image: app, build: 'https://github.com/docker/compose.git#main'}}")
    assert stack.services["app"].build.remote  # type: ignore[union-attr]
    with pytest.raises(SpecError) as e:
        build_request(stack, "app", "app")
    assert str(e.value) == (
        "compose.yaml: services.app.build.context: not supported yet: a git or URL build context "
        "(https://github.com/docker/compose.git#main): clone it and set context to the local folder")


@pytest.mark.parametrize("network", ["bridge", "mynet"])
def test_build_network_other_than_default_host_none_is_refused(load: Loader, network: str) -> None:
    with pytest.raises(SpecError, match=f'services.app.build.network: not supported: build network "{network}"'):
        load(f"services: {{app: {{build: {{context: ., network: {network}}}}}}}")


def test_build_keys_render_in_config(load: Loader) -> None:
    from composer.spec.render import render_stack

    out = render_stack(load(STACK, environ={"FROM_ENV": "x"}))["services"]["app"]["build"]
    assert out["extra_hosts"] == ["db.local=10.1.2.3", "cache.local=10.1.2.4"]
    assert (out["network"], out["shm_size"], out["pull"], out["no_cache"]) == ("none", 128 << 20, True, True)
    assert out["tags"] == ["app:1", "registry.local/app:1"]


def test_build_keys_without_effect_here_are_warned_about(load: Loader) -> None:
    stack = load("""
services:
  app:
    build:
      context: .
      cache_from: [type=registry,ref=x]
      cache_to: [type=inline]
      platforms: [linux/amd64, linux/arm64]
      isolation: default
      provenance: true
      sbom: false
      no_cache_filter: [deps]
""")
    text = "\n".join(stack.warnings)
    for key in ("cache_from", "cache_to", "platforms", "isolation", "provenance", "sbom"):
        assert f"compose.yaml: services.app.build.{key}: " in text, key
    # no_cache_filter: the builder has one cache switch, so the whole build runs without it
    assert build_request(stack, "app", "t").no_cache is True


def test_build_ulimits_are_refused_by_name(load: Loader) -> None:
    with pytest.raises(SpecError, match="services.app.build.ulimits: not supported: "):
        load("services: {app: {build: {context: ., ulimits: {nofile: 1}}}}")


def test_privileged_and_entitlements_reach_the_build_request(load: Loader) -> None:
    """BuildKit's entitlements as Compose and buildx grant them: `privileged: true` is
    security.insecure, `entitlements` lists network.host / security.insecure, and
    `network: host` brings network.host (buildx asks for it); `config` and `build --print`
    show them as Compose does."""
    from composer.buildplan import bake_config
    from composer.spec.render import render_stack

    stack = load("""
services:
  priv: {image: p, build: {context: ., privileged: true}}
  ents: {image: e, build: {context: ., entitlements: [network.host, security.insecure]}}
  hostnet: {image: h, build: {context: ., network: host}}
  plain: {image: x, build: .}
""")
    granted = {name: build_request(stack, name, "t").entitlements for name in stack.services}
    assert granted == {"priv": ("security.insecure",),
                       "ents": ("network.host", "security.insecure"),
                       "hostnet": ("network.host",), "plain": ()}
    rendered = render_stack(stack)["services"]
    assert rendered["priv"]["build"]["privileged"] is True
    assert rendered["ents"]["build"]["entitlements"] == ["network.host", "security.insecure"]
    assert "privileged" not in rendered["plain"]["build"]
    bake = bake_config(stack, list(stack.services), lambda s: s, {})["target"]
    assert bake["priv"]["entitlements"] == ["security.insecure"]
    assert bake["ents"]["entitlements"] == ["network.host", "security.insecure"]
    assert "entitlements" not in bake["hostnet"] and "entitlements" not in bake["plain"]


@pytest.mark.parametrize(("value", "message"), [
    ("[device]", 'services.app.build.entitlements[0]: unknown or unsupported build entitlement "device"'),
    ("[network.host, security.unsafe]", 'entitlements[1]: unknown or unsupported build entitlement "security.unsafe": use network.host or security.insecure'),
    ("network.host", "services.app.build.entitlements: "),
])
def test_bad_build_entitlements_are_one_line_naming_the_key(load: Loader, value: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        load(f"services: {{app: {{build: {{context: ., entitlements: {value}}}}}}}")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_build_ssh_reaches_the_build_request(load: Loader, project, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    import yaml

    from composer.spec.render import render_stack

    agent = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(agent))
        (project / "id_rsa").write_text("not read at load time\n")
        text = (f"services: {{app: {{build: {{context: ., ssh: [default, 'sock={agent}', "
                "'key=./id_rsa']}}}\n")
        stack = load(text)  # the key file is not read when loading (as Compose's config)
        shown = yaml.safe_load(yaml.safe_dump(render_stack(stack)))["services"]["app"]["build"]
        assert shown["ssh"] == ["default", f"sock={agent}", f"key={project}/id_rsa"]
        monkeypatch.setenv("SSH_AUTH_SOCK", str(agent))
        assert ssh_sources(stack, "app") == ({"default": str(agent), "sock": str(agent)},
                                             {"key": (f"{project}/id_rsa",)})
        # key files are served by an agent composer.sshkeys starts (tests/unit/test_sshkeys.py)
        with pytest.raises(SpecError, match='services.app.build.ssh: ssh agent "key": key files '
                                            "need an agent started for the build"):
            build_request(stack, "app", "t")
        assert build_request(stack, "app", "t", ssh_agents={"key": "/run/a.sock"}).ssh["key"] == "/run/a.sock"
        stack = load(text.replace(", 'key=./id_rsa'", ""))
        assert build_request(stack, "app", "t").ssh == {"default": str(agent), "sock": str(agent)}
        monkeypatch.delenv("SSH_AUTH_SOCK")
        with pytest.raises(SpecError, match='ssh agent "default": SSH_AUTH_SOCK is not set'):
            build_request(stack, "app", "t")
        stack = load("services: {app: {build: {context: ., ssh: {gone: /nonexistent.sock}}}}")
        with pytest.raises(SpecError, match="cannot use /nonexistent.sock: No such file"):
            build_request(stack, "app", "t")


def test_additional_contexts_name_services_images_and_folders(load: Loader, project) -> None:  # type: ignore[no-untyped-def]
    from composer.convert import build_dependencies

    stack = load("""
services:
  base: {build: {context: ., dockerfile_inline: "FROM busybox"}}
  tagged: {image: reg/tagged:1, build: .}
  app:
    build:
      context: .
      additional_contexts:
        base: service:base
        tagged: service:tagged
        alp: docker-image://alpine:3.19
        assets: ./assets
""")
    req = build_request(stack, "app", "t")
    assert req.named_contexts == {"base": f"image:{stack.name}-base", "tagged": "image:reg/tagged:1",
                                  "alp": "image:alpine:3.19", "assets": f"dir:{project}/assets"}
    assert build_dependencies(stack, "app") == ("base", "tagged")
    with pytest.raises(SpecError, match="not supported yet: a git, URL or OCI layout context"):
        load("services: {app: {build: {context: ., additional_contexts: {a: 'https://x/y.git'}}}}")
    stack = load("services: {app: {build: {context: ., additional_contexts: {a: 'service:nope'}}}}")
    with pytest.raises(SpecError, match='services.app.build.additional_contexts.a: .*no service "nope"'):
        build_request(stack, "app", "t")


# the corpus's TestBuildSecrets: a file, and two from the environment, one under another id
SECRETS = """
services:
  app:
    build:
      context: .
      secrets:
        - mysecret
        - dotenvsecret
        - source: envsecret
          target: build_secret
secrets:
  mysecret: {file: ./secret.txt}
  envsecret: {environment: SOME_SECRET}
  dotenvsecret: {environment: ANOTHER_SECRET}
"""


def test_build_secrets_reach_the_build_request(load: Loader, write) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from composer.spec.render import render_stack

    write("secret.txt", "from-file\n")
    write(".env", "ANOTHER_SECRET=from-dotenv\n")
    stack = load(SECRETS, environ={"SOME_SECRET": "from-env"})
    req = build_request(stack, "app", "t")
    # keyed by the id RUN --mount=type=secret,id=... names: the target, else the source
    assert req.secrets == {"mysecret": "from-file\n", "dotenvsecret": "from-dotenv",
                           "build_secret": "from-env"}
    shown = yaml.safe_load(yaml.safe_dump(render_stack(stack)))["services"]["app"]["build"]
    assert shown["secrets"] == [{"source": "mysecret"}, {"source": "dotenvsecret"},
                                {"source": "envsecret", "target": "build_secret"}]
    # an unset variable is one line naming it, when the build needs it
    stack = load(SECRETS, environ={})
    with pytest.raises(SpecError, match="SOME_SECRET required by build secret"):
        build_request(stack, "app", "t")


@pytest.mark.parametrize(("entry", "message"), [
    ("[nope]", 'services.app.build.secrets\\[0\\]: undefined secret "nope"'),
    ("[{source: s, mode: 0400}]", r"build.secrets\[0\].mode: not supported: mode of a build secret"),
    ("[{source: s, target: /run/secrets/x}]", "invalid build secret target"),
])
def test_build_secret_errors_name_the_entry(load: Loader, entry: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load(f"services: {{app: {{build: {{context: ., secrets: {entry}}}}}}}\n"
             "secrets: {s: {file: ./s}}")
