from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import SpecError
from composer.spec.dotenv import parse_env_text, read_env_file


def test_dotenv_forms() -> None:
    text = (
        "# comment\n"
        "\n"
        "A=1\n"
        "export B=two words  \n"
        "C='single ${A} $x'\n"
        'D="double ${A}\\nline"\n'
        "E=${A}-${LOOKUP}\n"
        "F=value # trailing comment\n"
        "G=a#b\n"
        "H=\n"
        "LOOKUP\n"
        "MISSING\n"
        'I="multi\nline"\n'
        "J = spaced\n"
    )
    env = parse_env_text(text, {"LOOKUP": "from-os"}, ".env")
    assert env == {
        "A": "1", "B": "two words", "C": "single ${A} $x", "D": "double 1\nline", "E": "1-from-os",
        "F": "value", "G": "a#b", "H": "", "LOOKUP": "from-os", "I": "multi\nline", "J": "spaced",
    }


def test_bad_line_names_file_and_line() -> None:
    with pytest.raises(SpecError) as err:
        parse_env_text("A=1\n=oops\n", {}, ".env")
    assert str(err.value).startswith(".env: line 2: invalid line")


def test_unterminated_quote() -> None:
    with pytest.raises(SpecError, match="unterminated"):
        parse_env_text('A="open\n', {}, ".env")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read env file"):
        read_env_file(tmp_path / "nope.env", {})
