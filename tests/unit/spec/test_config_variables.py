"""`config --variables`: the variables the stack files use, read before interpolation."""
from __future__ import annotations

from pathlib import Path

from composer.spec.variables import Variable, variables_of


def test_every_form_with_its_default_alternate_and_requirement(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(
        'services:\n  web:\n    image: "nginx:${TAG:-1.25}"\n'
        '    environment:\n      A: "${NEED:?set it}"\n'
        '      B: "$$NOTAVAR ${ALT:+yes} $PLAIN ${OUTER-${INNER}}"\n'
        '      ${KEYS_ARE_NOT}: x\n')
    assert variables_of([str(f)]) == [
        Variable("ALT", alternate="yes"), Variable("INNER"), Variable("NEED", required=True),
        Variable("OUTER", default="${INNER}"), Variable("PLAIN"),
        Variable("TAG", default="1.25")]


def test_the_first_file_that_uses_a_name_decides(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("services: {web: {image: '${IMG-one}'}}\n")
    b.write_text("services: {web: {image: '${IMG-two}', command: '${CMD?}'}}\n")
    assert variables_of([str(a), str(b)]) == [Variable("CMD", required=True),
                                               Variable("IMG", default="one")]
