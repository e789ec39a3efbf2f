"""`ls --filter`: Docker's name filter (an exact name or a regular expression)."""
from __future__ import annotations

import pytest

from composer.cli.ps_cmd import _name_filters
from composer.errors import ComposerError


def test_name_filters_are_regular_expressions() -> None:
    (f,) = _name_filters(["name=^web"])
    assert f.search("webshop") and not f.search("myweb")


@pytest.mark.parametrize(("item", "msg"), [
    ("name", "use name=REGEX"), ("status=running", "supported: name"), ("name=(", "invalid"),
])
def test_bad_filters_are_one_line(item: str, msg: str) -> None:
    with pytest.raises(ComposerError, match=msg):
        _name_filters([item])
