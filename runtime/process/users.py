"""Resolve a Docker `user:` string against the container's own /etc/passwd and /etc/group.

Runs inside the container after pivot_root (the files are the image's, not the host's).
Rules follow runc's user.GetExecUser: a numeric uid missing from passwd is allowed (gid 0),
a name that is missing is an error; supplementary groups come from /etc/group membership
plus `group_add`.
"""
from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import LaunchError

_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    name: str = ""


def _table(text: str | None, fields: int) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        parts += [""] * (fields - len(parts))
        rows.append(parts)
    return rows


def _num(s: str) -> int | None:
    if s.isdigit():
        n = int(s)
        if n > _MAX_ID:
            raise LaunchError(f"id {s} is out of range (max {_MAX_ID})")
        return n
    return None


def resolve_user(spec: str, group_add: tuple[str, ...] | list[str],
                 passwd: str | None, group: str | None) -> ExecUser:
    user_part, _, group_part = (spec or "").partition(":")
    users = _table(passwd, 7)
    groups = _table(group, 4)

    uid, gid, home, name = 0, 0, "/", ""
    found = None
    if user_part:
        n = _num(user_part)
        for row in users:
            if (n is not None and row[2] == user_part) or (n is None and row[0] == user_part):
                found = row
                break
        if found is None and n is None:
            raise LaunchError(
                f"unable to find user {user_part}: no matching entries in passwd file "
                "(add the user to the image or use a numeric uid)", exit_code=125)
        uid = n if n is not None else int(found[2])  # type: ignore[index]
    else:
        found = next((r for r in users if r[2] == "0"), None)
    if found is not None:
        name = found[0]
        gid = int(found[3]) if found[3].isdigit() else 0
        home = found[5] or "/"

    if group_part:
        gid = _group_id(group_part, groups)

    extra: list[int] = []
    if name:
        for row in groups:
            members = [m.strip() for m in row[3].split(",") if m.strip()]
            if name in members and row[2].isdigit():
                extra.append(int(row[2]))
    for g in group_add:
        extra.append(_group_id(g, groups))
    seen: list[int] = []
    for gid_ in extra:
        if gid_ not in seen:
            seen.append(gid_)
    return ExecUser(uid=uid, gid=gid, groups=tuple(seen), home=home, name=name)


def _group_id(g: str, groups: list[list[str]]) -> int:
    n = _num(g)
    if n is not None:
        return n
    for row in groups:
        if row[0] == g and row[2].isdigit():
            return int(row[2])
    raise LaunchError(
        f"unable to find group {g}: no matching entries in group file "
        "(add the group to the image or use a numeric gid)", exit_code=125)
