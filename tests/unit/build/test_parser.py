"""Dockerfile parsing: instructions, forms, continuations, directives, errors with lines."""
from __future__ import annotations

import pytest

from runtime.images.build import parser as p
from runtime.images.build.errors import BuildError


def one(text: str) -> p.Instruction:
    df = p.parse("FROM busybox\n" + text)
    (inst,) = df.stages[0].instructions
    return inst


def test_lnmp_style_dockerfile() -> None:
    df = p.parse(
        "# a comment\n"
        "FROM debian:bookworm-slim\n"
        "RUN apt-get update \\\n"
        "    # comment inside a continuation\n"
        "    && apt-get install -y nginx \\\n"
        "\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "COPY default.conf /etc/nginx/sites-enabled/default\n"
        "EXPOSE 80\n"
        "STOPSIGNAL SIGQUIT\n"
        'CMD ["nginx", "-g", "daemon off;"]\n'
    )
    (st,) = df.stages
    assert st.from_.image == "debian:bookworm-slim" and st.from_.line == 2
    run, copy, expose, stop, cmd = st.instructions
    assert isinstance(run, p.Run) and run.shell_form and run.line == 3
    assert run.command == ("apt-get update     && apt-get install -y nginx     && rm -rf /var/lib/apt/lists/*",)
    assert isinstance(copy, p.Copy) and copy.line == 8 and copy.sources == ("default.conf",)
    assert isinstance(expose, p.Expose) and expose.line == 9
    assert isinstance(stop, p.StopSignal) and stop.signal == "SIGQUIT"
    assert isinstance(cmd, p.Cmd) and not cmd.shell_form and cmd.command == ("nginx", "-g", "daemon off;")


def test_escape_directive_backtick() -> None:
    df = p.parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\nCOPY c:\\dir\\x /y\n")
    run, copy = df.stages[0].instructions
    assert run.command == ("echo a   b",) and run.escape == "`"
    assert isinstance(copy, p.Copy) and copy.sources == ("c:\\dir\\x",)


def test_directive_after_instruction_is_a_comment() -> None:
    df = p.parse("FROM busybox\n# escape=`\nRUN echo \\\n x\n")
    assert df.stages[0].instructions[0].command == ("echo  x",)


def test_stages_names_and_global_args() -> None:
    df = p.parse("ARG BASE=busybox\nARG V\nFROM $BASE AS Build\nRUN true\nFROM scratch\nCOPY --from=build /a /a\n")
    assert [a.pairs for a in df.global_args] == [(("BASE", "busybox"),), (("V", None),)]
    assert df.stages[0].name == "build" and df.stage("BUILD") is df.stages[0]
    assert df.stage("1") is df.stages[1] and df.stage("nope") is None
    copy = df.stages[1].instructions[0]
    assert isinstance(copy, p.Copy) and copy.from_ == "build"


def test_platform_is_ignored_with_warning() -> None:
    df = p.parse("FROM --platform=linux/arm64 busybox\n")
    assert df.stages[0].from_.platform == "linux/arm64"
    assert "ignored" in df.warnings[0] and "Dockerfile:1" in df.warnings[0]


def test_run_exec_form_and_invalid_json_falls_back_to_shell() -> None:
    assert one('RUN ["echo", "hi"]').command == ("echo", "hi")
    r = one("RUN [not json")
    assert r.shell_form and r.command == ("[not json",)


def test_copy_flags_json_and_many_sources() -> None:
    c = one('COPY --chown=www-data:www-data --chmod=0640 a.txt b*.txt "dir/" /dst/')
    assert isinstance(c, p.Copy)
    assert c.chown == "www-data:www-data" and c.chmod == "0640"
    assert c.sources == ("a.txt", "b*.txt", '"dir/"') and c.dest == "/dst/"
    j = one('COPY ["a b.txt", "/d e/"]')
    assert j.json_form and j.sources == ("a b.txt",) and j.dest == "/d e/"
    a = one("ADD --chown=1:1 x.tar.gz /opt/")
    assert isinstance(a, p.Add) and a.chown == "1:1"


def test_env_both_forms() -> None:
    e = one('ENV A=1 B="v 2" C=\'$lit\'')
    assert e.pairs == (("A", "1"), ("B", '"v 2"'), ("C", "'$lit'"))
    assert e.expand({}).pairs == (("A", "1"), ("B", "v 2"), ("C", "$lit"))
    legacy = one("ENV GREETING hello   world")
    assert legacy.pairs == (("GREETING", "hello   world"),)


def test_label_arg_user_workdir_volume() -> None:
    assert one('LABEL "com.x"="a b" v=1').expand({}).pairs == (("com.x", "a b"), ("v", "1"))
    assert one("ARG A=1 B").pairs == (("A", "1"), ("B", None))
    assert one("USER www-data:www-data").user == "www-data:www-data"
    assert one("WORKDIR /app").path == "/app"
    assert one('VOLUME ["/data", "/logs"]').paths == ("/data", "/logs")
    assert one("VOLUME /a /b").paths == ("/a", "/b")
    assert one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]').argv == ("/bin/bash", "-o", "pipefail", "-c")
    assert one("ENTRYPOINT exec top -b").shell_form


def test_expose_ranges_and_protocols() -> None:
    assert one("EXPOSE 80 53/udp 8000-8002").expand({}).ports == (
        "80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp")


def test_healthcheck() -> None:
    h = one("HEALTHCHECK --interval=5s --timeout=1m30s --retries=4 --start-period=500ms "
            "--start-interval=2s CMD curl -f http://localhost/ || exit 1")
    assert isinstance(h, p.Healthcheck)
    assert h.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert (h.interval, h.timeout, h.retries, h.start_period, h.start_interval) == (5, 90, 4, 0.5, 2)
    assert one('HEALTHCHECK CMD ["pg_isready"]').test == ("CMD", "pg_isready")
    assert one("HEALTHCHECK NONE").test == ("NONE",)


def test_maintainer_is_a_label() -> None:
    assert one("MAINTAINER me@example.com").pairs == (("maintainer", "me@example.com"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM busybox\nRUN true\n\n# c\nCOPY a /b\nENV X=1\nRUNN echo\n", 'Dockerfile:7: unknown instruction "RUNN"'),
        ("RUN true\nFROM busybox\n", "Dockerfile:1: RUN before the first FROM"),
        ("# only a comment\n", "Dockerfile: no FROM instruction"),
        ("FROM busybox\nONBUILD RUN x\n", "Dockerfile:2: ONBUILD is not supported"),
        ("FROM busybox\nCOPY onlyone\n", "Dockerfile:2: COPY requires at least two arguments"),
        ("FROM busybox\nENV\n", "Dockerfile:2: ENV requires at least one argument"),
        ("FROM busybox\nENV A=1 B\n", "Dockerfile:2: ENV: can't find '='"),
        ("FROM busybox\nENV LONELY\n", "Dockerfile:2: ENV LONELY needs a value"),
        ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
        ("FROM a AS x\nFROM b AS x\n", "Dockerfile:2: duplicate stage name 'x'"),
        ("FROM busybox\nRUN --mount=type=cache,target=/x true\n", "Dockerfile:2: RUN --mount=type=cache is not supported (only type=secret"),
        ("FROM busybox\nRUN --mount=type=ssh,target=rel true\n", "Dockerfile:2: RUN --mount=type=ssh: target 'rel' must be"),
        ("FROM busybox\nRUN --mount=type=ssh,src=x true\n", "Dockerfile:2: RUN --mount=type=ssh: unknown option 'src'"),
        ("FROM busybox\nRUN --mount=type=ssh,mode=rw true\n", "Dockerfile:2: RUN --mount=type=ssh: mode is octal"),
        ("FROM busybox\nRUN --netwrk=none true\n", 'Dockerfile:2: RUN: unknown or unsupported flag "--netwrk"'),
        ("FROM busybox\nRUN --network=bridge true\n", "Dockerfile:2: RUN --network=bridge: unknown network mode: use default or none or host"),
        ("FROM busybox\nRUN --security=privileged true\n", "Dockerfile:2: RUN --security=privileged: unknown security mode: use sandbox or insecure"),
        ("FROM busybox\nRUN --security true\n", "Dockerfile:2: RUN --security=: unknown security mode"),
        ("FROM busybox\nRUN --mount=type=secret,env=X true\n", "Dockerfile:2: RUN --mount=type=secret: unknown option 'env'"),
        ("FROM busybox\nRUN --mount=type=secret true\n", "Dockerfile:2: RUN --mount=type=secret needs id=NAME"),
        ("FROM busybox\nRUN --mount=type=secret,id=a,target=rel true\n", "Dockerfile:2: RUN --mount=type=secret: target 'rel' must be"),
        ("FROM busybox\nCOPY --frm=a b c\n", 'Dockerfile:2: COPY: unknown or unsupported flag "--frm"'),
        ("FROM busybox\nSHELL /bin/bash -c\n", "Dockerfile:2: SHELL requires the JSON form"),
        ("FROM busybox\nHEALTHCHECK --interval=5 CMD true\n", "Dockerfile:2: HEALTHCHECK --interval: invalid duration"),
        ("FROM busybox\nHEALTHCHECK --retries=0 CMD true\n", "Dockerfile:2: HEALTHCHECK --retries="),
        ("FROM busybox\nHEALTHCHECK BOGUS\n", "Dockerfile:2: HEALTHCHECK requires NONE or CMD"),
        ("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape directive"),
        ("FROM busybox\nSTOPSIGNAL A B\n", "Dockerfile:2: STOPSIGNAL requires exactly one argument"),
        ("FROM busybox\nRUN a \\\n b \\\n c\nBAD x\n", 'Dockerfile:5: unknown instruction "BAD"'),
    ],
)
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(BuildError) as ei:
        p.parse(text)
    assert str(ei.value).startswith(message), str(ei.value)


def test_expand_errors_name_the_line() -> None:
    df = p.parse("FROM busybox\n\nEXPOSE http\nCOPY --chmod=9z a /b\nWORKDIR ${X:?must be set}\n")
    expose, copy, wd = df.stages[0].instructions
    for inst, msg in ((expose, "invalid port"), (copy, "invalid --chmod"), (wd, "X: must be set")):
        with pytest.raises(BuildError, match=msg) as ei:
            inst.expand({})
        assert ei.value.line == inst.line


def test_parse_duration() -> None:
    assert p.parse_duration("1h2m3s") == 3723
    assert p.parse_duration("1.5s") == 1.5
    assert p.parse_duration("0") == 0
    for bad in ("", "5", "s", "1x"):
        with pytest.raises(ValueError):
            p.parse_duration(bad)


def test_run_secret_mounts() -> None:
    run = one("RUN --mount=type=secret,id=tok --mount=type=secret,source=k,dst=/etc/k,"
              "required,mode=0440,uid=5,gid=6 --mount=type=secret,target=/x/named cat /etc/k")
    assert isinstance(run, p.Run) and run.command == ("cat /etc/k",) and run.shell_form
    assert run.secrets == (
        p.SecretMount(id="tok", target="/run/secrets/tok"),
        p.SecretMount(id="k", target="/etc/k", required=True, mode=0o440, uid=5, gid=6),
        p.SecretMount(id="named", target="/x/named"),  # the id defaults to the target's name
    )


def test_run_ssh_mounts_default_as_buildkit() -> None:
    run = one("RUN --mount=type=ssh --mount=type=secret,id=s --mount=type=ssh,id=git,"
              "target=/agent,required=true,mode=0660,uid=1000,gid=1001 ssh-add -l")
    assert isinstance(run, p.Run) and run.command == ("ssh-add -l",)
    assert run.ssh == (
        # id "default", target /run/buildkit/ssh_agent.N counting this RUN's ssh mounts
        p.SshMount(id="default", target="/run/buildkit/ssh_agent.0"),
        p.SshMount(id="git", target="/agent", required=True, mode=0o660, uid=1000, gid=1001),
    )
    assert run.secrets == (p.SecretMount(id="s", target="/run/secrets/s"),)
    second = one("RUN --mount=type=ssh,id=a --mount=type=ssh,id=b true")
    assert isinstance(second, p.Run)
    assert [m.target for m in second.ssh] == ["/run/buildkit/ssh_agent.0", "/run/buildkit/ssh_agent.1"]


def test_run_network_and_security_modes() -> None:
    """RUN --network / --security (BuildKit's): per command, beside --mount; the defaults
    are the build's network and the sandbox."""
    run = one("RUN --security=insecure --mount=type=secret,id=s --network=none mount -t tmpfs t /mnt")
    assert isinstance(run, p.Run) and run.command == ("mount -t tmpfs t /mnt",)
    assert (run.security, run.network) == ("insecure", "none")
    assert run.secrets == (p.SecretMount(id="s", target="/run/secrets/s"),)
    plain = one("RUN true")
    assert isinstance(plain, p.Run) and (plain.security, plain.network) == ("sandbox", "default")
    host = one('RUN --network=host --security=sandbox ["ip", "link"]')
    assert isinstance(host, p.Run) and (host.security, host.network) == ("sandbox", "host")
    assert host.command == ("ip", "link") and not host.shell_form
