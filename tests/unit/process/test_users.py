from __future__ import annotations

import pytest

from runtime.errors import LaunchError
from runtime.process.users import resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
www-data:x:33:33:www-data:/var/www:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
"""
GROUP = """root:x:0:
www-data:x:33:
app:x:1000:
audio:x:29:app,www-data
video:x:44:app
"""


def test_default_is_root() -> None:
    u = resolve_user("", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.home, u.groups) == (0, 0, "/root", ())


def test_by_name_with_supplementary_groups() -> None:
    u = resolve_user("app", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.home) == (1000, 1000, "/home/app")
    assert u.groups == (29, 44)


def test_numeric_uid_found_and_missing() -> None:
    assert resolve_user("33", (), PASSWD, GROUP).gid == 33
    u = resolve_user("4242", (), PASSWD, GROUP)  # Docker allows a uid unknown to the image
    assert (u.uid, u.gid, u.home) == (4242, 0, "/")


def test_user_and_group() -> None:
    u = resolve_user("app:audio", (), PASSWD, GROUP)
    assert (u.uid, u.gid) == (1000, 29)
    u = resolve_user("1000:77", (), PASSWD, GROUP)
    assert (u.uid, u.gid) == (1000, 77)


def test_group_add() -> None:
    u = resolve_user("www-data", ("video", "500"), PASSWD, GROUP)
    assert u.groups == (29, 44, 500)


def test_unknown_user_and_group_are_clear_errors() -> None:
    with pytest.raises(LaunchError, match="unable to find user nobody2: no matching entries"):
        resolve_user("nobody2", (), PASSWD, GROUP)
    with pytest.raises(LaunchError, match="unable to find group wheel"):
        resolve_user("app:wheel", (), PASSWD, GROUP)
    with pytest.raises(LaunchError, match="unable to find user root"):
        resolve_user("root", (), None, None)  # an image without /etc/passwd
