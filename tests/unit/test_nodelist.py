"""Tests for cloudai_nb.core.nodelist: Slurm-style host list expand/compress."""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudai_nb.core.nodelist import (
    MAX_NAMES,
    NodeListError,
    compress,
    expand,
    is_nodelist_spec,
    node_sort_key,
    split_top_level,
)

EXPAND_CASES = [
    ("n1", ["n1"]),
    ("login", ["login"]),
    ("node-[001-003]", ["node-001", "node-002", "node-003"]),
    ("n[1-3,7]", ["n1", "n2", "n3", "n7"]),
    ("a1,b[2-3],c", ["a1", "b2", "b3", "c"]),
    ("rack[0-1]-gpu[0-1]", ["rack0-gpu0", "rack0-gpu1", "rack1-gpu0", "rack1-gpu1"]),
    ("n[8-10]", ["n8", "n9", "n10"]),
    ("n[08-10]", ["n08", "n09", "n10"]),
    ("n[008-10]", ["n008", "n009", "n010"]),
    ("n[007]", ["n007"]),
    ("n[1-03]", ["n1", "n2", "n3"]),
    ("n[98-101]x", ["n98x", "n99x", "n100x", "n101x"]),
    ("[0-2]", ["0", "1", "2"]),
    ("n[1-2]-ib", ["n1-ib", "n2-ib"]),
    ("n[3,1,2]", ["n3", "n1", "n2"]),
    ("n[1-3,2-4]", ["n1", "n2", "n3", "n4"]),
    ("b,a,b", ["b", "a"]),
    ("n1,n[1-2]", ["n1", "n2"]),
    ("a-b.c_d", ["a-b.c_d"]),
    (" a , b[1-2] ", ["a", "b1", "b2"]),
    ("x[1]y[2]z", ["x1y2z"]),
]


@pytest.mark.parametrize(("spec", "expected"), EXPAND_CASES)
def test_expand(spec: str, expected: list[str]) -> None:
    assert expand(spec) == expected
    assert is_nodelist_spec(spec)


EXPAND_ERRORS = [
    ("", "empty node list"),
    ("   ", "empty node list"),
    ("a,,b", "empty element at position 2"),
    ("a,", "empty element at position 2"),
    (",a", "empty element at position 0"),
    ("a, ,b", "empty element at position 3"),
    ("n[1-3", "unclosed '[' at position 1"),
    ("n1-3]", "unmatched ']' at position 4"),
    ("n[1]]", "unmatched ']' at position 4"),
    ("n[]", "empty brackets '[]' at position 1"),
    ("n[3-1]", "range 3-1 is descending at position 2"),
    ("n[1,5-2]", "range 5-2 is descending at position 4"),
    ("n[a-b]", "non-numeric range 'a-b' at position 2"),
    ("n[1-]", "non-numeric range '1-'"),
    ("n[-3]", "non-numeric range '-3'"),
    ("n[1-2-3]", "non-numeric range '1-2-3'"),
    ("n[x]", "non-numeric range 'x'"),
    ("n[\u00b2]", "non-numeric range"),
    ("n[1,,2]", "empty range item at position 4"),
    ("n[1,]", "empty range item at position 4"),
    ("n[[1]]", "nested '[' at position 2"),
    ("n[1[2]]", "nested '[' at position 3"),
    ("my node", "whitespace in name at position 2"),
    ("n[1, 2]", "whitespace in brackets at position 4"),
    ("n[0-1000000]", f"expands to more than {MAX_NAMES} names"),
    ("n[0-999999],m[0-1]", f"expands to more than {MAX_NAMES} names"),
    ("a[0-999]b[0-999]c[0-9]", f"expands to more than {MAX_NAMES} names"),
    ("n[0-99999999999999999999]", f"expands to more than {MAX_NAMES} names"),
]


@pytest.mark.parametrize(("spec", "fragment"), EXPAND_ERRORS)
def test_expand_errors(spec: str, fragment: str) -> None:
    with pytest.raises(NodeListError) as info:
        expand(spec)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(f"bad node list {spec!r}: ")
    assert "\n" not in message
    assert isinstance(info.value, ValueError)
    assert not is_nodelist_spec(spec)


def test_error_message_example_and_attributes() -> None:
    with pytest.raises(NodeListError, match=r"^bad node list 'n\[3-1\]': range 3-1 is descending") as info:
        expand("n[3-1]")
    assert info.value.spec == "n[3-1]"
    assert info.value.position == 2
    assert info.value.reason == "range 3-1 is descending"


def test_error_message_truncates_long_specs() -> None:
    spec = "n" * 500 + "[2-1]"
    with pytest.raises(NodeListError) as info:
        expand(spec)
    assert len(str(info.value)) < 150
    assert info.value.position == 501


def test_exactly_max_names_is_allowed() -> None:
    assert is_nodelist_spec(f"n[1-{MAX_NAMES}]")
    assert is_nodelist_spec("a[0-999]b[0-999]")


def test_huge_range_rejected_quickly() -> None:
    start = time.perf_counter()
    assert not is_nodelist_spec("n[0-" + "9" * 200 + "]")
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("a", ["a"]),
        ("", [""]),
        ("a,b", ["a", "b"]),
        ("a,n[1,2],,b", ["a", "n[1,2]", "", "b"]),
        ("x[1-2]y[3,4],z", ["x[1-2]y[3,4]", "z"]),
        (" a , b ", [" a ", " b "]),
    ],
)
def test_split_top_level(spec: str, expected: list[str]) -> None:
    assert split_top_level(spec) == expected


@pytest.mark.parametrize(("spec", "fragment"), [("a[1,2", "unclosed '['"), ("a]1,2", "unmatched ']'")])
def test_split_top_level_errors(spec: str, fragment: str) -> None:
    with pytest.raises(NodeListError, match=re.escape(fragment)):
        split_top_level(spec)


def test_is_nodelist_spec_rejects_non_str() -> None:
    assert not is_nodelist_spec(None)  # type: ignore[arg-type]
    assert not is_nodelist_spec(3)  # type: ignore[arg-type]


COMPRESS_CASES = [
    ([], ""),
    (["n1"], "n1"),
    (["login"], "login"),
    (["n2", "n1", "n3", "n7"], "n[1-3,7]"),
    (["n1", "n1", "n2"], "n[1-2]"),
    (["node-001", "node-002", "node-003", "node-010"], "node-[001-003,010]"),
    (["n8", "n9", "n10"], "n[8-9],n10"),
    (["n08", "n09", "n10"], "n[08-10]"),
    (["n8", "n08"], "n8,n08"),
    (["n3", "n1", "n2", "n7", "login", "n010"], "login,n[1-3,7],n010"),
    (["b", "a", "c1"], "a,b,c1"),
    (["rack1-gpu0", "rack1-gpu1", "rack0-gpu0"], "rack0-gpu0,rack1-gpu[0-1]"),
    (["n1-ib", "n2-ib", "n1-eth"], "n1-eth,n[1-2]-ib"),
    (["0", "1", "2", "5"], "[0-2,5]"),
    (["n", "n1", "m"], "m,n,n1"),
]


@pytest.mark.parametrize(("names", "expected"), COMPRESS_CASES)
def test_compress(names: list[str], expected: str) -> None:
    result = compress(names)
    assert result == expected
    if names:
        assert expand(result) == sorted(set(names), key=node_sort_key)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty name"),
        ("n[1]", "'[' not allowed in a name at position 1"),
        ("n]", "']' not allowed in a name at position 1"),
        ("a,b", "',' not allowed in a name at position 1"),
        ("a b", "whitespace in name at position 1"),
    ],
)
def test_compress_errors(name: str, fragment: str) -> None:
    with pytest.raises(NodeListError) as info:
        compress(["ok", name])
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"bad node name {name!r}: ")


def test_compress_accepts_any_iterable() -> None:
    assert compress(f"n{i}" for i in (3, 1, 2)) == "n[1-3]"


def test_compress_rejects_single_string() -> None:
    with pytest.raises(TypeError, match="not a single str"):
        compress("n1")


def test_compress_rejects_non_str_names() -> None:
    with pytest.raises(TypeError, match="must be str"):
        compress([1])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("login", ("login", "", 0, 0)),
        ("n007", ("n", "", 3, 7)),
        ("rack1-gpu12", ("rack1-gpu", "", 2, 12)),
        ("n12-ib", ("n", "-ib", 2, 12)),
        ("42", ("", "", 2, 42)),
    ],
)
def test_node_sort_key(name: str, key: tuple[str, str, int, int]) -> None:
    assert node_sort_key(name) == key


# ---------------------------------------------------------------- property tests

_PREFIX = st.text(alphabet="abn-_.", max_size=4) | st.builds(
    lambda a, d, b: a + d + b,
    st.text(alphabet="ab", max_size=2),
    st.text(alphabet="0123456789", min_size=1, max_size=2),
    st.text(alphabet="-_x", min_size=1, max_size=2),
)
_SUFFIX = st.text(alphabet="-_.ib", max_size=3)


@st.composite
def structured_names(draw: st.DrawFn) -> str:
    prefix = draw(_PREFIX)
    suffix = draw(_SUFFIX)
    width = draw(st.integers(min_value=1, max_value=4))
    number = draw(st.integers(min_value=0, max_value=10**width - 1))
    padded = draw(st.booleans())
    return prefix + (str(number).zfill(width) if padded else str(number)) + suffix


_NAME = structured_names() | st.text(alphabet="abn-._0123456789", min_size=1, max_size=8)
_NAMES = st.lists(_NAME, max_size=40)
_SETTINGS = settings(max_examples=200, deadline=None)


@_SETTINGS
@given(_NAMES)
def test_round_trip_is_canonical_order(names: list[str]) -> None:
    compressed = compress(names)
    if not names:
        assert compressed == ""
        return
    assert is_nodelist_spec(compressed)
    assert expand(compressed) == sorted(set(names), key=node_sort_key)


@_SETTINGS
@given(_NAMES)
def test_compress_is_idempotent(names: list[str]) -> None:
    compressed = compress(names)
    if names:
        assert compress(expand(compressed)) == compressed


@_SETTINGS
@given(_NAMES, st.randoms(use_true_random=False))
def test_compress_ignores_input_order_and_duplicates(names: list[str], rnd: random.Random) -> None:
    shuffled = names * 2
    rnd.shuffle(shuffled)
    assert compress(shuffled) == compress(names)


@_SETTINGS
@given(st.text(alphabet="n0129[]-, ", max_size=16))
def test_is_nodelist_spec_agrees_with_expand(spec: str) -> None:
    try:
        names = expand(spec)
    except NodeListError:
        assert not is_nodelist_spec(spec)
    else:
        assert is_nodelist_spec(spec)
        assert names
        assert len(names) == len(set(names))
