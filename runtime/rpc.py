"""What the daemon and the client agree on besides the routes (runtime.routes): JSON bodies,
errors, query strings.

JSON bodies are `runtime.serde` dicts of the dataclasses in runtime.types/api, and of the
request bodies below; streams are chunked JSON lines, one object per line, and
`{"error": {...}}` ends a broken stream.

Errors: status = the EngineError subclass's `.status`, body
`{"message": str, "kind": class name, "subject": str | null[, "exit_code": int]}`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from runtime import serde
from runtime.errors import Conflict, EngineError, InvalidArgument, LaunchError, NotFound
from runtime.paths import safe_name

T = TypeVar("T")

API_VERSION = "1"
MAX_BODY = 1024 * 1024  # bytes; larger request bodies get 413
STREAM_CONTENT_TYPE = "application/x-ndjson"
TAR_CONTENT_TYPE = "application/x-tar"
PATH_STAT_HEADER = "X-Composer-Path-Stat"
ERROR_HEADER = "X-Composer-Error"  # an error's JSON body, repeated (json.dumps: ASCII only)
TOO_LARGE = f"request body too large: the limit is {MAX_BODY // 1024} KiB"


@dataclass(frozen=True)
class ExecRequest:
    """Body of POST /containers/{ref}/exec (and exec-prepare); the `request` query value
    (JSON) of GET /containers/{ref}/exec-attach, where `stdin` and `detach` count."""

    argv: tuple[str, ...]
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    tty: bool = False
    privileged: bool = False  # exec --privileged: every capability for this process
    stdin: bool = True
    detach: bool = False


@dataclass(frozen=True)
class RemovePathsRequest:
    """Body of POST /containers/{ref}/remove-paths: absolute paths in the container."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class ImportRequest:
    """Body of POST /images/import: a rootfs tarball or directory on the daemon's host."""

    path: str
    tag: str


@dataclass(frozen=True)
class PullRequest:
    """Body of POST /images/pull."""

    ref: str


@dataclass(frozen=True)
class LoadRequest:
    """Body of POST /images/load: a docker-archive or OCI layout on the daemon's host."""

    path: str


# ---------------------------------------------------------------- JSON bodies


def encode(obj: Any) -> bytes:
    return json.dumps(serde.to_dict(obj), separators=(",", ":")).encode()


def decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InvalidArgument(f"request body is not valid json: {e}") from None


def decode(cls: type[T], data: Any) -> T:
    """Strictly build dataclass `cls` from JSON data: unknown fields and wrong types are errors."""
    check_type(cls, data, cls.__name__)
    try:
        return serde.from_dict(cls, data)
    except (TypeError, ValueError, KeyError) as e:
        raise InvalidArgument(f"invalid {cls.__name__}: {e}") from None


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _bad(where: str, expected: str, value: Any) -> InvalidArgument:
    return InvalidArgument(f"invalid {where}: expected {expected}, got {type(value).__name__}")


def check_type(tp: Any, value: Any, where: str) -> None:
    """Raise InvalidArgument naming the key path (`ContainerSpec.mounts[0].target`) on a mismatch."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                check_type(a, value, where)
                return
            except InvalidArgument as e:
                errors.append(e)
        raise errors[0] if len(errors) == 1 else _bad(where, " or ".join(map(_name, args)), value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise _bad(where, "an object", value)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise InvalidArgument(f"invalid {where}: unknown field(s) {', '.join(unknown)}")
        hints = _hints(tp)
        for name, f in fields.items():
            if name not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise InvalidArgument(f"invalid {where}: missing field {name}")
                continue
            check_type(hints[name], value[name], f"{where}.{name}")
        return
    if origin is tuple or origin is list:
        if not isinstance(value, list):
            raise _bad(where, "an array", value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise InvalidArgument(
                    f"invalid {where}: expected {len(args)} items, got {len(value)}"
                )
            for i, (a, v) in enumerate(zip(args, value, strict=True)):
                check_type(a, v, f"{where}[{i}]")
            return
        for i, v in enumerate(value):
            check_type(args[0], v, f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise _bad(where, "an object", value)
        for k, v in value.items():
            check_type(args[1], v, f"{where}[{k!r}]")
        return
    if origin is typing.Literal:
        if value not in args:
            raise InvalidArgument(
                f"invalid {where}: {value!r} is not one of {', '.join(map(repr, args))}"
            )
        return
    if tp is bool:
        if not isinstance(value, bool):
            raise _bad(where, "a boolean", value)
        return
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(where, "an integer", value)
        return
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(where, "a number", value)
        return
    if tp is str:
        if not isinstance(value, str):
            raise _bad(where, "a string", value)
        if "\x00" in value:
            raise InvalidArgument(f"invalid {where}: contains a NUL byte")
        return
    raise InvalidArgument(f"invalid {where}: unsupported type {_name(tp)}")  # pragma: no cover


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


# ---------------------------------------------------------------- names and query strings

# image references: registry[:port]/path/name[:tag][@sha256:hex] or a bare id; no '.'/'..' parts
_IMAGE_PART = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.:@+=-]*$")


def container_ref(ref: str) -> str:
    return safe_name(ref, "container reference")


def object_name(name: str, what: str) -> str:
    return safe_name(name, what)


def image_ref(ref: str) -> str:
    parts = ref.split("/")
    if len(ref) > 512 or not all(_IMAGE_PART.match(p) and ".." not in p for p in parts):
        raise InvalidArgument(
            f"invalid image reference {ref!r}: use name[:tag] or name@digest", subject=ref
        )
    return ref


def container_path(path: str | None) -> str:
    """A path inside a container (relative ones are from its root): no NUL, not empty."""
    if not path or "\x00" in path:
        raise InvalidArgument("give the path inside the container (path=...)")
    if len(path) > 4096:
        raise InvalidArgument("the path is longer than 4096 bytes")
    return path


def host_path(path: str, what: str) -> str:
    """A path on the daemon's host given by the (root) client: absolute, no NUL."""
    if not path.startswith("/") or "\x00" in path:
        raise InvalidArgument(f"invalid {what} {path!r}: give an absolute path", subject=path)
    return path


def parse_bool(value: str | None, what: str) -> bool:
    if value is None:
        return False
    v = value.lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("", "0", "false", "no", "off"):
        return False
    raise InvalidArgument(f"invalid query parameter {what}={value!r}: use 1 or 0")


def parse_time(value: str | None, what: str) -> float | None:
    """A point in time as epoch seconds (logs since/until)."""
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except ValueError:
        raise InvalidArgument(
            f"invalid query parameter {what}={value!r}: expected epoch seconds") from None
    if not (0 <= f < 1e11):
        raise InvalidArgument(f"invalid query parameter {what}={value!r}: out of range")
    return f


def parse_float(value: str | None, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except ValueError:
        raise InvalidArgument(
            f"invalid query parameter {what}={value!r}: expected a number"
        ) from None
    if not (0 <= f < 1e9):
        raise InvalidArgument(f"invalid query parameter {what}={value!r}: must be >= 0")
    return f


def parse_int(value: str | None, what: str) -> int | None:
    if value is None or value == "" or value == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        raise InvalidArgument(
            f"invalid query parameter {what}={value!r}: expected an integer"
        ) from None
    if n < 0:
        raise InvalidArgument(f"invalid query parameter {what}={value!r}: must be >= 0")
    return n


def parse_labels(values: list[str]) -> dict[str, str] | None:
    """`["k=v", ...]` (repeated `label=` query parameters) -> {k: v}; None when there are none."""
    if not values:
        return None
    labels = {}
    for item in values:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"invalid label filter {item!r}: use key=value")
        labels[key] = val
    return labels


def format_labels(labels: dict[str, str] | None) -> list[tuple[str, str]]:
    return [("label", f"{k}={v}") for k, v in (labels or {}).items()]


def parse_signal(value: str | None) -> str:
    """Accept `SIGTERM`, `TERM`, `15`; return the name the engine gets (`SIGTERM`)."""
    if value is None or value == "":
        return "SIGKILL"
    if value.isdigit():
        try:
            return signal.Signals(int(value)).name
        except ValueError:
            pass
    else:
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in signal.Signals.__members__:
            return name
    raise InvalidArgument(
        f"invalid signal {value!r}: use a name like SIGTERM or a number", subject=value
    )


# ---------------------------------------------------------------- errors


def error_body(exc: EngineError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": exc.message,
        "kind": type(exc).__name__,
        "subject": exc.subject,
    }
    exit_code = getattr(exc, "exit_code", None)
    if isinstance(exit_code, int):
        body["exit_code"] = exit_code
    return body


_BY_STATUS: dict[int, type[EngineError]] = {404: NotFound, 409: Conflict, 400: InvalidArgument}


def _subclasses(cls: type[EngineError]) -> dict[str, type[EngineError]]:
    found = {cls.__name__: cls}
    for sub in cls.__subclasses__():
        found.update(_subclasses(sub))
    return found


def error_from_body(status: int, body: Any) -> EngineError:
    """Rebuild the EngineError the daemon raised: same class (by `kind`) and message."""
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or f"composerd answered http {status}")
    subject = body.get("subject") if isinstance(body.get("subject"), str) else None
    kind = body.get("kind")
    cls = _subclasses(EngineError).get(kind) if isinstance(kind, str) else None
    if cls is None or cls.status != status:
        cls = _BY_STATUS.get(status) or (InvalidArgument if 400 <= status < 500 else EngineError)
    exc: EngineError
    try:
        if issubclass(cls, LaunchError):
            exc = cls(message, subject=subject, exit_code=int(body.get("exit_code", 125)))
        else:
            exc = cls(message, subject=subject)
    except TypeError:  # a subclass with its own constructor: keep the message, lose the class
        exc = (_BY_STATUS.get(status) or EngineError)(message, subject=subject)
    if type(exc) is EngineError or type(exc) is InvalidArgument and status not in _BY_STATUS:
        exc.status = status  # keep 413, 405, 503, ... visible to callers
    return exc
