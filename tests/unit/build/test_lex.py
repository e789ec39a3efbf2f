"""Variable substitution and word splitting as Docker does them."""
from __future__ import annotations

import pytest

from runtime.images.build.lex import SubstitutionError, process_word, split_words, used_names

ENV = {"A": "a", "EMPTY": "", "P": "/usr/bin"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}x", "ax"),
        ("$Ax", ""),  # the name is Ax
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:+x}", "x"),
        ("${EMPTY:+x}", ""),
        ("${EMPTY+x}", "x"),
        ("${UNSET:+x}", ""),
        ("${A:-$P}", "a"),
        ("${UNSET:-$P/x}", "/usr/bin/x"),
        ("'$A'", "$A"),
        ('"$A b"', "a b"),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ("$", "$"),
        ("a$-b", "a$-b"),
        ("$P:/x", "/usr/bin:/x"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    assert process_word(word, ENV) == expected


def test_backtick_escape() -> None:
    assert process_word("`$A", ENV, "`") == "$A"
    assert process_word("c:\\x", ENV, "`") == "c:\\x"


def test_errors() -> None:
    with pytest.raises(SubstitutionError, match="must be set"):
        process_word("${UNSET:?must be set}", ENV)
    with pytest.raises(SubstitutionError):
        process_word("${A", ENV)
    with pytest.raises(SubstitutionError):
        process_word("'unterminated", ENV)
    with pytest.raises(SubstitutionError):
        process_word("${A%x}", ENV)


def test_json_words_keep_quotes() -> None:
    assert process_word("it's $A", ENV, quotes=False) == "it's a"


def test_split_words_keeps_quotes() -> None:
    assert split_words('a "b c" d\\ e \'f g\'') == ["a", '"b c"', "d\\ e", "'f g'"]


def test_used_names() -> None:
    assert used_names("${A:-$B} $C", {}) == {"A", "B", "C"}
