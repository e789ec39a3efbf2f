from __future__ import annotations

import pytest

from composer.errors import SpecError
from composer.spec.interpolate import Interpolator
from composer.spec.where import Where

ENV = {"SET": "value", "EMPTY": "", "NUM": "5", "OTHER": "x"}
W = Where("compose.yaml", "services.web.image")


@pytest.mark.parametrize(("text", "out"), [
    ("$SET", "value"), ("${SET}", "value"), ("a${SET}b", "avalueb"), ("$SET-x", "value-x"),
    ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"), ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"), ("${SET:-dflt}", "value"),
    ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("$$SET", "$SET"), ("$${SET}", "${SET}"), ("cost: $$5", "cost: $5"),
    ("${UNSET:-${OTHER}}", "x"), ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
    ("${UNSET:-a-${SET}-b}", "a-value-b"), ("${SET?err}", "value"), ("${EMPTY?err}", ""),
    ("echo $(date)", "echo $(date)"), ("trailing $", "trailing $"), ("$1", "$1"),
    ("${UNSET:-}", ""), ("${UNSET}", ""), ("$UNSET", ""),
])
def test_forms(text: str, out: str) -> None:
    assert Interpolator(ENV).text(text, W) == out


def test_unset_variable_warns() -> None:
    interp = Interpolator(ENV)
    assert interp.text("${NOPE}", W) == ""
    assert interp.warnings == [
        "compose.yaml: services.web.image: the NOPE variable is not set, defaulting to a blank string"
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("${UNSET:?must be set}", "required variable UNSET is missing a value: must be set"),
    ("${EMPTY:?empty!}", "required variable EMPTY is missing a value: empty!"),
    ("${UNSET?}", "required variable UNSET is missing a value: variable UNSET is required"),
    ("${UNSET:?need ${SET}}", "required variable UNSET is missing a value: need value"),
])
def test_required_errors_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        Interpolator(ENV).text(text, W)
    assert str(err.value) == f"compose.yaml: services.web.image: {message}"


@pytest.mark.parametrize("text", ["${", "${SET", "${1X}", "${SET!x}", "${}", "${SET:x}"])
def test_invalid_format(text: str) -> None:
    with pytest.raises(SpecError, match="invalid interpolation format"):
        Interpolator(ENV).text(text, W)


def test_tree_interpolates_values_not_keys() -> None:
    tree = {"$SET": ["${SET}", 1, None, {"k": "$NUM"}]}
    assert Interpolator(ENV).tree(tree, Where("f")) == {"$SET": ["value", 1, None, {"k": "5"}]}


def test_error_path_inside_tree() -> None:
    with pytest.raises(SpecError) as err:
        Interpolator({}).tree({"services": {"web": {"ports": ["${P:?set P}"]}}}, Where("c.yaml"))
    assert str(err.value) == "c.yaml: services.web.ports[0]: required variable P is missing a value: set P"
