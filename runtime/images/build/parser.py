"""Dockerfile -> typed instructions (frozen dataclasses), grouped into build stages.

Parsing is pure and happens once; variable substitution happens later, per build, with
`Instruction.expand(env)` (ARG values differ between builds). Which instructions
substitute follows Docker: FROM (global ARGs only), COPY, ADD, ENV, ARG defaults, LABEL,
WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL. RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are
left to the shell.
"""
from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Self

from runtime.images.build.errors import BuildError
from runtime.images.build.lex import SubstitutionError, process_word, split_words

KNOWN_DIRECTIVES = ("escape", "syntax", "check")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)")
# RUN's per-command modes and their values (BuildKit's dockerfile frontend)
RUN_MODES = {"network": ("default", "none", "host"), "security": ("sandbox", "insecure")}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# --- instructions ----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Instruction:
    line: int  # 1-based line where the instruction starts
    text: str  # the instruction as written, continuations joined (progress, cache keys)
    escape: str = "\\"

    @property
    def keyword(self) -> str:
        return type(self).__name__.upper()

    def expand(self, env: Mapping[str, str]) -> Self:
        """This instruction with `$VAR`s replaced from `env` (identity where Docker does not
        substitute). Raises BuildError naming the line on a bad substitution."""
        return self

    def _word(self, word: str, env: Mapping[str, str], *, quotes: bool = True) -> str:
        try:
            return process_word(word, env, self.escape, quotes=quotes)
        except SubstitutionError as e:
            raise BuildError(f"{self.keyword}: {e}", line=self.line) from e


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    image: str
    name: str | None = None
    platform: str | None = None

    def expand(self, env: Mapping[str, str]) -> Self:
        return replace(self, image=self._word(self.image, env))


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    command: tuple[str, ...]
    shell_form: bool
    secrets: tuple[SecretMount, ...] = ()  # RUN --mount=type=secret,...
    ssh: tuple[SshMount, ...] = ()  # RUN --mount=type=ssh,...
    # RUN --network=: "default" (the build's network), "none" (own namespace, only lo) or
    # "host" (needs the network.host entitlement, as BuildKit)
    network: str = "default"
    # RUN --security=: "sandbox" (default capabilities) or "insecure" (as a privileged
    # container; needs the security.insecure entitlement, as BuildKit)
    security: str = "sandbox"


@dataclass(frozen=True)
class SecretMount:
    """`RUN --mount=type=secret,id=ID[,target=PATH][,required=BOOL][,mode=][,uid=][,gid=]`:
    the build secret ID as a read-only file at `target` (default /run/secrets/ID) for this
    RUN only; it is not part of the layer. A missing secret is skipped unless `required`."""

    id: str
    target: str
    required: bool = False
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class SshMount:
    """`RUN --mount=type=ssh[,id=ID][,target=PATH][,required=BOOL][,mode=][,uid=][,gid=]`:
    the build's ssh agent ID (default "default") as a socket at `target` (default
    /run/buildkit/ssh_agent.N, N counting the RUN's ssh mounts from 0) for this RUN only; the
    first one is also $SSH_AUTH_SOCK unless the RUN's environment sets it. A missing agent is
    skipped unless `required` (as BuildKit)."""

    id: str
    target: str
    required: bool = False
    mode: int = 0o600
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True, kw_only=True)
class Cmd(Instruction):
    command: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True, kw_only=True)
class Entrypoint(Instruction):
    command: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    sources: tuple[str, ...]
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    json_form: bool = False

    def expand(self, env: Mapping[str, str]) -> Self:
        q = not self.json_form
        out = replace(
            self,
            sources=tuple(self._word(s, env, quotes=q) for s in self.sources),
            dest=self._word(self.dest, env, quotes=q),
            from_=self._word(self.from_, env) if self.from_ is not None else None,
            chown=self._word(self.chown, env) if self.chown is not None else None,
            chmod=self._word(self.chmod, env) if self.chmod is not None else None,
        )
        if out.chmod is not None and not re.fullmatch(r"[0-7]{3,4}", out.chmod):
            raise BuildError(f"{self.keyword}: invalid --chmod={out.chmod!r}: use octal digits like 0755",
                             line=self.line)
        return out


@dataclass(frozen=True, kw_only=True)
class Add(Copy):
    pass


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    pairs: tuple[tuple[str, str], ...]

    def expand(self, env: Mapping[str, str]) -> Self:
        # all pairs see the environment from before this instruction (Docker's rule)
        return replace(self, pairs=tuple((k, self._word(v, env)) for k, v in self.pairs))


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]

    def expand(self, env: Mapping[str, str]) -> Self:
        return replace(self, pairs=tuple((self._word(k, env), self._word(v, env)) for k, v in self.pairs))


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    pairs: tuple[tuple[str, str | None], ...]  # (name, default or None)

    def expand(self, env: Mapping[str, str]) -> Self:
        return replace(self, pairs=tuple((k, None if v is None else self._word(v, env)) for k, v in self.pairs))


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    path: str

    def expand(self, env: Mapping[str, str]) -> Self:
        return replace(self, path=self._word(self.path, env))


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    user: str

    def expand(self, env: Mapping[str, str]) -> Self:
        return replace(self, user=self._word(self.user, env))


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    ports: tuple[str, ...]

    def expand(self, env: Mapping[str, str]) -> Self:
        ports: list[str] = []
        for raw in self.ports:
            word = self._word(raw, env)
            m = re.fullmatch(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", word.lower())
            if not m:
                raise BuildError(f"EXPOSE: invalid port {word!r}: use PORT[/tcp|udp] or a range like 8000-8010",
                                 line=self.line)
            lo, hi, proto = int(m[1]), int(m[2] or m[1]), m[3] or "tcp"
            if not (0 < lo <= hi <= 65535):
                raise BuildError(f"EXPOSE: invalid port range {word!r}", line=self.line)
            ports += [f"{p}/{proto}" for p in range(lo, hi + 1)]
        return replace(self, ports=tuple(ports))


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    paths: tuple[str, ...]
    json_form: bool = False

    def expand(self, env: Mapping[str, str]) -> Self:
        return replace(self, paths=tuple(self._word(p, env, quotes=not self.json_form) for p in self.paths))


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    signal: str

    def expand(self, env: Mapping[str, str]) -> Self:
        return replace(self, signal=self._word(self.signal, env))


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    argv: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    test: tuple[str, ...]  # ("NONE",), ("CMD", ...), ("CMD-SHELL", "cmd")
    interval: float | None = None  # seconds; None = Docker's default
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None


@dataclass(frozen=True)
class Stage:
    index: int
    from_: From
    instructions: tuple[Instruction, ...]

    @property
    def name(self) -> str | None:
        return self.from_.name


@dataclass(frozen=True)
class Dockerfile:
    filename: str
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = ()

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or index."""
        for st in self.stages:
            if st.name is not None and st.name == ref.lower():
                return st
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


# --- parsing -----------------------------------------------------------------------------

def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    return _Parser(text, filename).parse()


def parse_duration(s: str) -> float:
    """A Go duration ("30s", "1m30s", "500ms") in seconds."""
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m[1]) * _DURATION_UNITS[m[2]]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"invalid duration {s!r}: use a number with a unit, like 30s, 1m30s or 500ms")
    return total


class _Parser:
    def __init__(self, text: str, filename: str) -> None:
        self.lines = text.splitlines()
        self.filename = filename
        self.escape = "\\"
        self.warnings: list[str] = []

    def error(self, line: int, msg: str) -> BuildError:
        return BuildError(msg, file=self.filename, line=line)

    def parse(self) -> Dockerfile:
        start = self._directives()
        global_args: list[Arg] = []
        stages: list[Stage] = []
        current: From | None = None
        body: list[Instruction] = []
        names: set[str] = set()
        for lineno, keyword, rest, text in self._logical_lines(start):
            inst = self._instruction(lineno, keyword, rest, text)
            if isinstance(inst, From):
                if current is not None:
                    stages.append(Stage(len(stages), current, tuple(body)))
                if inst.name is not None:
                    if inst.name in names:
                        raise self.error(lineno, f"duplicate stage name {inst.name!r}: give each stage its own name")
                    names.add(inst.name)
                current, body = inst, []
            elif current is None:
                if not isinstance(inst, Arg):
                    raise self.error(lineno, f"{keyword} before the first FROM: only ARG may come before FROM")
                global_args.append(inst)
            else:
                body.append(inst)
        if current is None:
            raise BuildError("no FROM instruction: a Dockerfile must have at least one FROM", file=self.filename)
        stages.append(Stage(len(stages), current, tuple(body)))
        return Dockerfile(self.filename, tuple(global_args), tuple(stages), tuple(self.warnings))

    def _directives(self) -> int:
        seen: set[str] = set()
        for i, line in enumerate(self.lines):
            m = _DIRECTIVE.match(line.strip())
            if not m or m[1].lower() not in KNOWN_DIRECTIVES:
                return i
            key, value = m[1].lower(), m[2]
            if key in seen:
                raise self.error(i + 1, f"directive {key!r} given twice")
            seen.add(key)
            if key == "escape":
                if value not in ("\\", "`"):
                    raise self.error(i + 1, f"invalid escape directive {value!r}: use \\ or `")
                self.escape = value
        return len(self.lines)

    def _logical_lines(self, start: int):  # type: ignore[no-untyped-def]
        """Yield (line number, KEYWORD, rest, text) per instruction: comments dropped,
        continuations joined."""
        i = start
        n = len(self.lines)
        while i < n:
            raw = self.lines[i]
            i += 1
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            lineno = i
            parts: list[str] = []
            line = raw
            while True:
                stripped = line.rstrip()
                if stripped.endswith(self.escape):
                    parts.append(stripped[:-1])
                    # next non-comment, non-empty line continues this one
                    while i < n and (not self.lines[i].strip() or self.lines[i].lstrip().startswith("#")):
                        i += 1
                    if i >= n:
                        break
                    line = self.lines[i]
                    i += 1
                    continue
                parts.append(line)
                break
            text = "".join(parts).strip()
            m = re.match(r"(\S+)\s*(.*)$", text, re.S)
            assert m is not None
            keyword, rest = m[1], m[2].strip()
            yield lineno, keyword.upper(), rest, text

    # -- one instruction --

    def _instruction(self, line: int, kw: str, rest: str, text: str) -> Instruction:
        base = {"line": line, "text": text, "escape": self.escape}
        handler = getattr(self, f"_i_{kw.lower()}", None)
        if kw == "ONBUILD":
            raise self.error(line, "ONBUILD is not supported: move the instructions into the Dockerfile that uses this image")
        if handler is None or not kw.isalpha():
            raise self.error(line, f'unknown instruction "{kw}"')
        if not rest and kw not in ("HEALTHCHECK",):
            raise self.error(line, f"{kw} requires at least one argument")
        inst: Instruction = handler(base, rest)
        return inst

    def _flags(self, line: int, kw: str, rest: str, allowed: tuple[str, ...]) -> tuple[dict[str, str], str]:
        flags: dict[str, str] = {}
        while rest.startswith("--"):
            m = _FLAG.match(rest)
            if not m:
                raise self.error(line, f"{kw}: bad flag in {rest.split()[0]!r}")
            name, value = m[1].lower(), m[2] if m[2] is not None else ""
            if name not in allowed:
                hint = f" (known: {', '.join('--' + a for a in allowed)})" if allowed else ""
                raise self.error(line, f'{kw}: unknown or unsupported flag "--{name}"{hint}')
            flags[name] = value
            rest = rest[m.end():]
        return flags, rest.strip()

    def _json(self, rest: str) -> list[str] | None:
        if not rest.startswith("["):
            return None
        try:
            val = json.loads(rest)
        except ValueError:
            return None
        if isinstance(val, list) and all(isinstance(v, str) for v in val):
            return val
        return None

    def _command(self, rest: str) -> tuple[tuple[str, ...], bool]:
        js = self._json(rest)
        if js is not None:
            return tuple(js), False
        return (rest,), True

    def _i_from(self, base: dict[str, Any], rest: str) -> From:
        flags, rest = self._flags(base["line"], "FROM", rest, ("platform",))
        platform = flags.get("platform")
        if platform is not None:
            self.warnings.append(f"{self.filename}:{base['line']}: FROM --platform={platform} is ignored: "
                                 "images are built for this machine's platform")
        words = split_words(rest, self.escape)
        name = None
        if len(words) == 3 and words[1].lower() == "as":
            name = words[2].lower()
            if not _STAGE_NAME.match(name):
                raise self.error(base["line"], f"invalid stage name {words[2]!r}: use letters, digits, '-', '_', '.', starting with a letter")
        elif len(words) != 1:
            raise self.error(base["line"], "FROM requires either one or three arguments: FROM IMAGE [AS NAME]")
        return From(**base, image=words[0], name=name, platform=platform)

    def _i_run(self, base: dict[str, Any], rest: str) -> Run:
        secrets: list[SecretMount] = []
        ssh: list[SshMount] = []
        modes = {"network": "default", "security": "sandbox"}
        while rest.startswith("--"):  # --mount may repeat: not through _flags' dict
            m = _FLAG.match(rest)
            name = m[1].lower() if m else ""
            if not m or name not in ("mount", *modes):
                flag = m[1] if m else rest.split()[0]
                raise self.error(base["line"], f'RUN: unknown or unsupported flag "--{flag}" '
                                               "(known: --mount=type=secret, --mount=type=ssh, "
                                               "--network, --security)")
            if name in modes:
                modes[name] = self._run_mode(base["line"], name, m[2] or "")
            else:
                mount = self._run_mount(base["line"], m[2] or "", len(ssh))
                if isinstance(mount, SshMount):
                    ssh.append(mount)
                else:
                    secrets.append(mount)
            rest = rest[m.end():]
        rest = rest.strip()
        if not rest:
            raise self.error(base["line"], "RUN requires at least one argument")
        cmd, shell = self._command(rest)
        return Run(**base, command=cmd, shell_form=shell, secrets=tuple(secrets), ssh=tuple(ssh),
                   network=modes["network"], security=modes["security"])

    def _run_mode(self, line: int, name: str, value: str) -> str:
        """RUN --network=default|none|host, RUN --security=sandbox|insecure (BuildKit's)."""
        known = RUN_MODES[name]
        if value not in known:
            raise self.error(line, f"RUN --{name}={value}: unknown {name} mode: use "
                                   + " or ".join(known))
        return value

    def _run_mount(self, line: int, value: str, ssh_index: int) -> SecretMount | SshMount:
        fields: dict[str, str] = {}
        for part in value.split(","):
            key, eq, val = part.partition("=")
            key = key.strip().lower()
            if not key:
                continue
            fields[{"dst": "target", "destination": "target", "source": "id"}.get(key, key)] = (
                val if eq else "true")
        kind = fields.pop("type", "bind")
        if kind not in ("secret", "ssh"):
            raise self.error(line, f"RUN --mount=type={kind} is not supported (only "
                                   "type=secret: build secrets, type=ssh: an ssh agent)")
        what = f"RUN --mount=type={kind}"
        unknown = sorted(set(fields) - {"id", "target", "required", "mode", "uid", "gid"})
        if unknown:
            raise self.error(line, f"{what}: unknown option {unknown[0]!r} "
                                   "(known: id, target, required, mode, uid, gid)")
        target = fields.get("target", "")
        if target and not target.startswith("/"):
            raise self.error(line, f"{what}: target {target!r} must be an absolute path")
        required = fields.get("required", "false").lower()
        if required not in ("true", "false", "1", "0"):
            raise self.error(line, f"{what}: required={required!r}: use true or false")
        try:
            mode = int(fields.get("mode", "0600" if kind == "ssh" else "0400"), 8)
            uid, gid = int(fields.get("uid", "0")), int(fields.get("gid", "0"))
        except ValueError:
            raise self.error(line, f"{what}: mode is octal, uid and gid are numbers") from None
        if kind == "ssh":
            return SshMount(id=fields.get("id") or "default",
                            target=target or f"/run/buildkit/ssh_agent.{ssh_index}",
                            required=required in ("true", "1"), mode=mode & 0o7777, uid=uid,
                            gid=gid)
        sid = fields.get("id") or (posixpath.basename(target.rstrip("/")) if target else "")
        if not sid:
            raise self.error(line, "RUN --mount=type=secret needs id=NAME (or a target)")
        return SecretMount(id=sid, target=target or f"/run/secrets/{sid}",
                           required=required in ("true", "1"), mode=mode & 0o7777, uid=uid,
                           gid=gid)

    def _i_cmd(self, base: dict[str, Any], rest: str) -> Cmd:
        cmd, shell = self._command(rest)
        return Cmd(**base, command=cmd, shell_form=shell)

    def _i_entrypoint(self, base: dict[str, Any], rest: str) -> Entrypoint:
        cmd, shell = self._command(rest)
        return Entrypoint(**base, command=cmd, shell_form=shell)

    def _copy_args(self, base: dict[str, Any], kw: str, rest: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        flags, rest = self._flags(base["line"], kw, rest, allowed)
        js = self._json(rest)
        words = js if js is not None else split_words(rest, self.escape)
        if len(words) < 2:
            raise self.error(base["line"], f"{kw} requires at least two arguments: {kw} SOURCE... DEST")
        if "from" in flags and not flags["from"]:
            raise self.error(base["line"], f"{kw}: --from needs a stage name, index or image")
        return dict(**base, sources=tuple(words[:-1]), dest=words[-1], from_=flags.get("from"),
                    chown=flags.get("chown"), chmod=flags.get("chmod"), json_form=js is not None)

    def _i_copy(self, base: dict[str, Any], rest: str) -> Copy:
        return Copy(**self._copy_args(base, "COPY", rest, ("from", "chown", "chmod", "link")))

    def _i_add(self, base: dict[str, Any], rest: str) -> Add:
        return Add(**self._copy_args(base, "ADD", rest, ("chown", "chmod", "link")))

    def _name_values(self, base: dict[str, Any], kw: str, rest: str) -> tuple[tuple[str, str], ...]:
        words = split_words(rest, self.escape)
        if "=" not in words[0]:
            # legacy form: `ENV key the rest of the line`
            value = rest[len(words[0]):].strip()
            if not value:
                raise self.error(base["line"], f"{kw} {words[0]} needs a value: {kw} NAME=VALUE or {kw} NAME VALUE")
            return ((words[0], value),)
        pairs = []
        for w in words:
            k, eq, v = w.partition("=")
            if not eq or not k:
                raise self.error(base["line"], f"{kw}: can't find '=' in {w!r}: use {kw} NAME=VALUE ...")
            pairs.append((k, v))
        return tuple(pairs)

    def _i_env(self, base: dict[str, Any], rest: str) -> Env:
        return Env(**base, pairs=self._name_values(base, "ENV", rest))

    def _i_label(self, base: dict[str, Any], rest: str) -> Label:
        return Label(**base, pairs=self._name_values(base, "LABEL", rest))

    def _i_maintainer(self, base: dict[str, Any], rest: str) -> Label:
        return Label(**base, pairs=(("maintainer", rest),))

    def _i_arg(self, base: dict[str, Any], rest: str) -> Arg:
        pairs: list[tuple[str, str | None]] = []
        for w in split_words(rest, self.escape):
            k, eq, v = w.partition("=")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise self.error(base["line"], f"ARG: invalid name {k!r}")
            pairs.append((k, v if eq else None))
        return Arg(**base, pairs=tuple(pairs))

    def _i_workdir(self, base: dict[str, Any], rest: str) -> Workdir:
        return Workdir(**base, path=rest)

    def _i_user(self, base: dict[str, Any], rest: str) -> User:
        return User(**base, user=rest)

    def _i_expose(self, base: dict[str, Any], rest: str) -> Expose:
        return Expose(**base, ports=tuple(split_words(rest, self.escape)))

    def _i_volume(self, base: dict[str, Any], rest: str) -> Volume:
        js = self._json(rest)
        paths = js if js is not None else split_words(rest, self.escape)
        if not paths or any(not p for p in paths):
            raise self.error(base["line"], "VOLUME requires at least one non-empty path")
        return Volume(**base, paths=tuple(paths), json_form=js is not None)

    def _i_stopsignal(self, base: dict[str, Any], rest: str) -> StopSignal:
        words = split_words(rest, self.escape)
        if len(words) != 1:
            raise self.error(base["line"], "STOPSIGNAL requires exactly one argument, like SIGTERM or 15")
        return StopSignal(**base, signal=words[0])

    def _i_shell(self, base: dict[str, Any], rest: str) -> Shell:
        js = self._json(rest)
        if not js:
            raise self.error(base["line"], 'SHELL requires the JSON form, like SHELL ["/bin/bash", "-c"]')
        return Shell(**base, argv=tuple(js))

    def _i_healthcheck(self, base: dict[str, Any], rest: str) -> Healthcheck:
        line = base["line"]
        flags, rest = self._flags(line, "HEALTHCHECK", rest,
                                  ("interval", "timeout", "start-period", "start-interval", "retries"))
        kind, _, cmd = rest.partition(" ")
        kind = kind.upper()
        if kind == "NONE":
            if flags or cmd.strip():
                raise self.error(line, "HEALTHCHECK NONE takes no options or arguments")
            return Healthcheck(**base, test=("NONE",))
        if kind != "CMD" or not cmd.strip():
            raise self.error(line, "HEALTHCHECK requires NONE or CMD followed by a command")
        command, shell = self._command(cmd.strip())
        test = ("CMD-SHELL", command[0]) if shell else ("CMD", *command)
        durations: dict[str, float] = {}
        for name in ("interval", "timeout", "start-period", "start-interval"):
            if name in flags:
                try:
                    durations[name.replace("-", "_")] = parse_duration(flags[name])
                except ValueError as e:
                    raise self.error(line, f"HEALTHCHECK --{name}: {e}") from e
        retries = None
        if "retries" in flags:
            if not flags["retries"].isdigit() or int(flags["retries"]) < 1:
                raise self.error(line, f"HEALTHCHECK --retries={flags['retries']!r}: use a whole number >= 1")
            retries = int(flags["retries"])
        return Healthcheck(**base, test=test, retries=retries, interval=durations.get("interval"),
                           timeout=durations.get("timeout"), start_period=durations.get("start_period"),
                           start_interval=durations.get("start_interval"))
