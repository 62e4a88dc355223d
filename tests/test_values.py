"""The one value converter: text and YAML values as their declared types, errors naming the value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, Optional

import pytest

from fer_nla.errors import InputError
from fer_nla.values import ConversionError, convert, describe


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        ("yes", bool, True), (" Off ", bool, False), ("1", bool, True), (0, bool, False), (True, bool, True),
        ("3", int, 3), (3.0, int, 3), ("1e3", int, 1000), ("-7", int, -7), ("12345678901234567891", int, 12345678901234567891),
        ("1e-4", float, 1e-4), (2, float, 2.0), (" 0.5", float, 0.5),
        (123, str, "123"), ("", str, ""), ("a b", str, "a b"),
        ("runs/x", Path, Path("runs/x")),
        ("null", int | None, None), ("~", Optional[int], None), (None, str | None, None), ("4", int | None, 4),
        ("", str | None, ""),  # empty text is a string unless the caller says it means unset
        ("BF16", Literal["auto", "bf16"], "bf16"), (False, Literal["on", "off"], "off"), (2, Literal[1, 2], 2),
        ("4, 5", list[int], [4, 5]), ([4, "5"], list[int], [4, 5]), (7, list[int], [7]), ("ce,,focal", list[str], ["ce", "focal"]),
        ("a,b", tuple[str, ...], ("a", "b")),
        ({"a": 1}, dict[str, Any], {"a": 1}),
        ([1, "x"], Any, [1, "x"]),
    ],
)
def test_values_become_their_declared_type(value, annotation, expected):
    got = convert(value, annotation, name="key")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("value", "annotation", "message"),
    [
        ("maybe", bool, "train.x must be true or false; got 'maybe'"),
        (2, bool, "train.x must be true or false; got 2"),
        (True, int, "train.x must be an integer; got True"),
        ("2.5", int, "train.x must be an integer; got '2.5'"),
        ("nan", int, "train.x must be an integer; got 'nan'"),
        (None, int, "train.x must be an integer; got None"),
        (False, float, "train.x must be a number; got False"),
        ("fast", float, "train.x must be a number; got 'fast'"),
        ([1], str, "train.x must be a string; got [1]"),
        (3, Path, "train.x must be a path; got 3"),
        ("fp8", Literal["auto", "fp32"], "train.x must be one of auto, fp32; got 'fp8'"),
        ("two", int | None, "train.x must be an integer; got 'two'"),
        ("1,x", list[int], "train.x must be a list of ints; got '1,x'"),
        ({"a": 1}, list[str], "train.x must be a list of strs; got {'a': 1}"),
        ("a=1", dict[str, Any], "train.x must be a mapping (key: value); got 'a=1'"),
    ],
)
def test_a_wrong_value_names_the_key_the_value_and_what_it_must_be(value, annotation, message):
    with pytest.raises(ConversionError) as err:
        convert(value, annotation, name="train.x")
    assert str(err.value) == message
    assert isinstance(err.value, InputError) and err.value.name == "train.x" and err.value.value == value


def test_none_words_say_which_texts_mean_unset():
    assert convert("", str | None, name="X", none_words=("",)) is None
    assert convert("none", str | None, name="X", none_words=("",)) == "none"
    assert convert("", str, name="X", none_words=("",)) == ""  # not optional: stays text
    assert convert("NULL", float | None, name="X") is None


def test_an_annotation_without_a_conversion_is_a_programming_error():
    with pytest.raises(TypeError, match="key: no conversion to"):
        convert("1", complex, name="key")
    with pytest.raises(TypeError, match=r"only tuple\[X, \.\.\.\]"):
        convert("1,2", tuple[int, int], name="key")


def test_describe_spells_annotations_as_written():
    assert [describe(a) for a in (int, str | None, Optional[float], list[int])] == [
        "int", "str | None", "float | None", "list[int]"]


def test_the_converter_and_its_prediction_side_users_import_no_torch_yaml_or_sklearn():
    code = ("import sys, fer_nla.values, fer_nla.serve.settings, fer_nla.commands; "
            "print(sorted(m for m in ('torch', 'yaml', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
