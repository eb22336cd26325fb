"""Bracket-notation parameters: flattening for signatures, Rack parsing for GET callbacks."""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from types import MappingProxyType
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from push2fa.authy.params import (
    MAX_DEPTH,
    MAX_PAIRS,
    ParamsError,
    flatten,
    form_encode,
    parse_bracket_pairs,
    parse_query,
    to_query,
)

# --- flatten ----------------------------------------------------------------------------


def test_flatten_names_nested_objects_with_brackets() -> None:
    body = {"approval_request": {"transaction": {"status": "approved"}}, "uuid": "u-1"}

    assert flatten(body) == [
        ("approval_request[transaction][status]", "approved"),
        ("uuid", "u-1"),
    ]


def test_flatten_indexes_arrays_from_zero_and_recurses_into_objects() -> None:
    body = {
        "logos": [{"res": "default", "url": "d.png"}, {"res": "med", "url": "m.png"}],
        "methods": ["pin", "fingerprint"],
    }

    assert flatten(body) == [
        ("logos[0][res]", "default"),
        ("logos[0][url]", "d.png"),
        ("logos[1][res]", "med"),
        ("logos[1][url]", "m.png"),
        ("methods[0]", "pin"),
        ("methods[1]", "fingerprint"),
    ]


def test_flatten_treats_any_mapping_and_sequence_like_dicts_and_lists() -> None:
    """The exact-type fast path for JSON's dict and list must not change what other
    containers (a read-only mapping, a tuple) flatten to, nor let a string through as one."""
    plain = {"a": {"b": ["x", {"c": "y"}]}, "s": "text"}
    other = MappingProxyType({"a": OrderedDict(b=("x", MappingProxyType({"c": "y"}))), "s": "text"})

    assert (
        flatten(other)
        == flatten(plain)
        == [
            ("a[b][0]", "x"),
            ("a[b][1][c]", "y"),
            ("s", "text"),
        ]
    )
    with pytest.raises(ParamsError):
        flatten({"bytes": b"raw"})


def test_flatten_drops_empty_objects_and_arrays() -> None:
    body = {"device_details": {}, "logos": [], "outer": {"inner": {}}, "kept": ""}

    assert flatten(body) == [("kept", "")]


def test_flatten_renders_scalars_as_authy_does() -> None:
    body = {"null": None, "yes": True, "no": False, "zero": 0, "neg": -5, "big": 10**20}

    assert dict(flatten(body)) == {
        "null": "",
        "yes": "true",
        "no": "false",
        "zero": "0",
        "neg": "-5",
        "big": "100000000000000000000",
    }


def test_flatten_writes_finite_floats_with_shortest_repr() -> None:
    assert flatten({"ratio": 1.5, "whole": 2.0}) == [("ratio", "1.5"), ("whole", "2.0")]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, b"bytes", {1, 2}, object()])
def test_flatten_rejects_values_authy_never_sends(value: Any) -> None:
    with pytest.raises(ParamsError):
        flatten({"field": value})


def test_flatten_rejects_non_string_keys_and_non_mappings() -> None:
    with pytest.raises(ParamsError):
        flatten({"details": {1: "one"}})
    with pytest.raises(ParamsError):
        flatten(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_flatten_rejects_cyclic_and_absurdly_deep_structures() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    deep: dict[str, Any] = {"leaf": "x"}
    for _ in range(MAX_DEPTH + 1):
        deep = {"n": deep}

    with pytest.raises(ParamsError):
        flatten(cyclic)
    with pytest.raises(ParamsError):
        flatten(deep)


# --- parse_bracket_pairs / parse_query ----------------------------------------------------


def test_parse_builds_objects_from_bracket_keys() -> None:
    pairs = [("device[os_type]", "android"), ("device[id]", "7"), ("status", "approved")]

    assert parse_bracket_pairs(pairs) == {
        "device": {"os_type": "android", "id": "7"},
        "status": "approved",
    }


def test_parse_appends_empty_brackets_to_an_array_in_order() -> None:
    pairs = [("methods[]", "pin"), ("methods[]", "fingerprint")]

    assert parse_bracket_pairs(pairs) == {"methods": ["pin", "fingerprint"]}


def test_parse_starts_a_new_object_when_the_last_one_already_has_the_key() -> None:
    query = (
        "logos[][res]=default&logos[][url]=d.png"
        "&logos[][res]=med&logos[][url]=m.png"
        "&logos[][res]=low"
    )

    assert parse_query(query) == {
        "logos": [
            {"res": "default", "url": "d.png"},
            {"res": "med", "url": "m.png"},
            {"res": "low"},
        ]
    }


def test_parse_fills_the_last_object_while_its_keys_are_new() -> None:
    query = "a[][x]=1&a[][y]=2&a[][x]=3"

    assert parse_query(query) == {"a": [{"x": "1", "y": "2"}, {"x": "3"}]}


def test_parse_compares_full_sub_paths_inside_arrays_of_objects() -> None:
    query = "a[][p][x]=1&a[][p][y]=2&a[][p][x]=3&a[][tags][]=t1&a[][tags][]=t2"

    assert parse_query(query) == {
        "a": [{"p": {"x": "1", "y": "2"}}, {"p": {"x": "3"}, "tags": ["t1", "t2"]}]
    }


def test_parse_accepts_explicit_indices_as_arrays() -> None:
    query = "logos[1][res]=med&logos[0][res]=default&logos[0][url]=d.png&tags[0]=a&tags[1]=b"

    assert parse_query(query) == {
        "logos": [{"res": "default", "url": "d.png"}, {"res": "med"}],
        "tags": ["a", "b"],
    }


def test_parse_keeps_numeric_keys_that_are_not_a_full_sequence_as_an_object() -> None:
    assert parse_query("details[123]=x&gap[0]=a&gap[2]=c") == {
        "details": {"123": "x"},
        "gap": {"0": "a", "2": "c"},
    }


def test_parse_query_keeps_blank_values_and_decodes_plus_and_percent() -> None:
    query = "approval_request%5Blogos%5D=&message=Log+in%3F+%C3%A9t%C3%A9&url=https%3A%2F%2Fx"

    assert parse_query(query) == {
        "approval_request": {"logos": ""},
        "message": "Log in? été",
        "url": "https://x",
    }


def test_parse_query_accepts_utf8_bytes() -> None:
    assert parse_query("name=Zo%C3%AB&city=Zürich".encode()) == {"name": "Zoë", "city": "Zürich"}


def test_parse_query_of_nothing_is_empty() -> None:
    assert parse_query("") == {}


@pytest.mark.parametrize(
    "query",
    [
        "a=1&a[b]=2",  # scalar, then object
        "a[b]=2&a=1",  # object, then scalar (Rack would silently overwrite)
        "a=1&a=2",  # duplicate scalar
        "a[b]=1&a[b]=2",  # duplicate nested scalar
        "a[]=1&a[b]=2",  # array, then object
        "a[b]=1&a[]=2",  # object, then array
        "a[]=1&a[0]=2",  # appended and indexed arrays mixed
        "a[b=1",  # unclosed bracket
        "a]=1",  # stray closing bracket
        "a[b]]=1",
        "a[b]c=1",  # text after a closing bracket
        "a[[b]]=1",  # nested bracket
        "[a]=1",  # no top-level name
        "=1",  # empty name
        "a" + "[x]" * (MAX_DEPTH + 1) + "=1",  # too deep
        "a" + "[]" * (MAX_DEPTH + 1) + "=1",
        "k=%FF",  # percent-escape that is not UTF-8
        "%C3=1",  # truncated UTF-8 sequence
        "&".join(f"k{i}=v" for i in range(MAX_PAIRS + 1)),  # too many pairs
    ],
)
def test_parse_query_rejects_malformed_or_ambiguous_input(query: str) -> None:
    with pytest.raises(ParamsError):
        parse_query(query)


@pytest.mark.parametrize("query", [b"k=\xff", b"\xc3=1"])
def test_parse_query_rejects_bytes_that_are_not_utf8(query: bytes) -> None:
    with pytest.raises(ParamsError):
        parse_query(query)


@pytest.mark.parametrize(
    "pairs",
    [
        [("a", 1)],
        [(1, "a")],
        [("a",)],
        ["a=1"],
        [("a", "1", "extra")],
        None,
        42,
    ],
)
def test_parse_bracket_pairs_rejects_pairs_that_are_not_string_tuples(pairs: Any) -> None:
    with pytest.raises(ParamsError):
        parse_bracket_pairs(pairs)


def test_parse_query_rejects_non_text_input() -> None:
    with pytest.raises(ParamsError):
        parse_query(None)  # type: ignore[arg-type]


def test_errors_quote_long_hostile_names_briefly() -> None:
    with pytest.raises(ParamsError) as caught:
        parse_query("a=1&a[" + "y" * 5000 + "]=2")

    assert len(str(caught.value)) < 200


@given(st.text(max_size=300))
def test_parse_query_raises_only_params_error_on_any_text(query: str) -> None:
    with contextlib.suppress(ParamsError):
        parse_query(query)


@given(st.binary(max_size=300))
def test_parse_query_raises_only_params_error_on_any_bytes(query: bytes) -> None:
    with contextlib.suppress(ParamsError):
        parse_query(query)


_BRACKETY = st.text(alphabet="ab0[]", max_size=12)


@given(st.lists(st.tuples(_BRACKETY, st.text(alphabet="xy", max_size=2)), max_size=12))
def test_parse_bracket_pairs_raises_only_params_error_on_bracket_soup(
    pairs: list[tuple[str, str]],
) -> None:
    with contextlib.suppress(ParamsError):
        parse_bracket_pairs(pairs)


# --- to_query and round trips ---------------------------------------------------------------


def test_to_query_collapses_indices_and_encodes_brackets() -> None:
    body = {"a": {"logos": [{"res": "default"}], "tags": ["x y", "p/q"]}}

    assert to_query(body) == (
        "a%5Blogos%5D%5B%5D%5Bres%5D=default&a%5Btags%5D%5B%5D=x+y&a%5Btags%5D%5B%5D=p%2Fq"
    )


def test_to_query_keeps_numeric_object_keys_as_keys() -> None:
    assert to_query({"details": {"123": "x"}}) == "details%5B123%5D=x"


def test_form_encode_leaves_only_unreserved_characters() -> None:
    assert form_encode("AZaz09-_.~") == "AZaz09-_.~"
    assert form_encode("a b+c/d|e&f=g[h]i*j'k(l)m!n,o:p") == (
        "a+b%2Bc%2Fd%7Ce%26f%3Dg%5Bh%5Di%2Aj%27k%28l%29m%21n%2Co%3Ap"
    )
    assert form_encode("é✓") == "%C3%A9%E2%9C%93"


def test_form_encode_matches_urllib_quote_for_every_character() -> None:
    """Hand-written for speed, so held to the standard library's encoder: every code
    point below U+3000 and a sample above, alone and in runs, as the signature needs."""
    points = [*range(0x3000), 0xFFFD, 0xFEFF, 0x10000, 0x1F600, 0x10FFFF]
    texts = [chr(p) for p in points if not 0xD800 <= p <= 0xDFFF]
    texts.append("".join(texts[:600]))
    texts.append("Zürich, CH | 100% ✓ a+b/c=d 😀")

    for text in texts:
        expected = quote_from_bytes(text.encode("utf-8"), safe="").replace("%20", "+")
        assert form_encode(text) == expected, repr(text)


def test_form_encode_rejects_lone_surrogates() -> None:
    with pytest.raises(ParamsError):
        form_encode("\ud800")


def test_callback_body_survives_a_get_round_trip() -> None:
    body = {
        "approval_request": {
            "logos": [
                {"res": "default", "url": "https://cdn.example/d.png?v=1&x=2"},
                {"res": "med", "url": "https://cdn.example/m.png"},
            ],
            "transaction": {
                "details": {"Username": "zoë", "Location": "Zürich, CH"},
                "message": "Log in to push2fa? 100% | yes & no",
                "status": "approved",
            },
        },
        "authy_id": "688611",
        "device": {"enabled_unlock_methods": ["pin", "fingerprint"], "city": ""},
    }

    assert parse_query(to_query(body)) == body


_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True)
_TEXT = st.text(max_size=20)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_NAMES, children, min_size=1, max_size=4)


@st.composite
def _uniform_object_arrays(draw: st.DrawFn) -> list[dict[str, str]]:
    """Arrays of objects that all have the same keys, the shape of Authy's `logos`."""
    keys = draw(st.lists(_NAMES, min_size=1, max_size=3, unique=True))
    size = draw(st.integers(min_value=1, max_value=3))
    return [{key: draw(_TEXT) for key in keys} for _ in range(size)]


realistic_bodies: st.SearchStrategy[dict[str, Any]] = _objects(
    st.recursive(
        _TEXT | st.lists(_TEXT, min_size=1, max_size=4) | _uniform_object_arrays(),
        _objects,
        max_leaves=12,
    )
)
"""Bodies as a GET callback can carry them: string leaves, no empty containers."""


@given(realistic_bodies)
def test_realistic_bodies_survive_to_query_and_parse_query(body: dict[str, Any]) -> None:
    assert parse_query(to_query(body)) == body


# --- corners of the Rack rules ---------------------------------------------------------------


def test_parse_makes_each_double_empty_bracket_pair_a_new_inner_array():
    assert parse_query("a[][]=1&a[][]=2&b[][][x]=3") == {"a": [["1"], ["2"]], "b": [[{"x": "3"}]]}


def test_a_sub_key_that_the_last_element_holds_as_text_starts_a_new_element():
    """`a[][x][y]` cannot go into an element whose `x` is already text: it starts the next
    element, so a body whose elements each start with `x` survives the round trip."""
    body = {"a": [{"x": "1"}, {"x": {"y": "2"}}]}

    assert parse_query("a[][x]=1&a[][x][y]=2") == body
    assert parse_query(to_query(body)) == body


def test_errors_name_the_parameter_whole_up_to_sixty_characters():
    sixty = "a[" + "b" * 57 + "]"
    sixty_one = "a[" + "b" * 58 + "]"

    with pytest.raises(ParamsError) as short:
        parse_query(f"a[b]=1&{sixty}=2&{sixty}=3")
    with pytest.raises(ParamsError) as long:
        parse_query(f"{sixty_one}=2&{sixty_one}=3")

    assert str(short.value) == f"parameter {sixty!r} conflicts with an earlier one"
    assert str(long.value) == f"parameter {sixty_one[:57] + '...'!r} conflicts with an earlier one"


def test_errors_say_what_was_wrong_with_the_input():
    """The push service answers a client's malformed request with these words."""
    with pytest.raises(ParamsError, match=r"^query string is not valid UTF-8$"):
        parse_query(b"message=caf\xe9")
    with pytest.raises(ParamsError, match=r"^query string must be str or bytes$"):
        parse_query(42)  # type: ignore[arg-type]


def _nested_dicts(levels: int) -> dict[str, Any]:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"n": value}
    return {"top": value}


def _nested_lists(levels: int) -> dict[str, Any]:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return {"top": value}


@pytest.mark.parametrize("nest", [_nested_dicts, _nested_lists])
def test_flatten_and_parse_agree_on_the_deepest_nesting_allowed(nest: Any) -> None:
    """MAX_DEPTH bracket segments are fine both ways; one more is refused both ways."""
    deepest = nest(MAX_DEPTH)
    (key, value), *_ = flatten(deepest)
    assert key.count("[") == MAX_DEPTH
    assert parse_query(to_query(deepest)) == deepest
    assert parse_bracket_pairs([(key, value)]) == deepest

    too_deep = nest(MAX_DEPTH + 1)
    with pytest.raises(ParamsError, match=rf"^parameters nested deeper than {MAX_DEPTH} levels$"):
        flatten(too_deep)
    with pytest.raises(ParamsError, match=rf"^parameters nested deeper than {MAX_DEPTH} levels$"):
        parse_query("top" + "[n]" * (MAX_DEPTH + 1) + "=leaf")


def test_to_query_collapses_indices_at_every_level() -> None:
    body = {"a": [["x", "y"], [{"b": ["z"]}]], "c": {"d": [{"e": ["w"]}]}}

    assert to_query(body) == (
        "a%5B%5D%5B%5D=x&a%5B%5D%5B%5D=y&a%5B%5D%5B%5D%5Bb%5D%5B%5D=z&c%5Bd%5D%5B%5D%5Be%5D%5B%5D=w"
    )


def test_parse_bracket_pairs_takes_exactly_max_pairs() -> None:
    pairs = [(f"k{i}", "v") for i in range(MAX_PAIRS)]
    assert len(parse_bracket_pairs(pairs)) == MAX_PAIRS
    assert len(parse_bracket_pairs(iter(pairs))) == MAX_PAIRS

    with pytest.raises(ParamsError, match=rf"^more than {MAX_PAIRS} parameters$"):
        parse_bracket_pairs([*pairs, ("one", "more")])


def test_a_flood_of_empty_fields_is_refused_before_it_is_split() -> None:
    """`&&&…` has no pairs, but splitting a huge one is the cost the cap is there to avoid."""
    with pytest.raises(ParamsError, match=r"^malformed query string: ValueError$"):
        parse_query("a=1" + "&" * MAX_PAIRS)


def test_a_nested_bracket_is_refused_even_when_the_brackets_balance() -> None:
    with pytest.raises(ParamsError, match=r"^nested '\[' in parameter name$"):
        parse_query("a[[b]=1")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: flatten(["not", "a", "mapping"]), "parameters must be a mapping"),  # type: ignore[arg-type]
        (lambda: flatten({"": "x"}), "top-level parameter names must be non-empty strings"),
        (lambda: flatten({"a": {1: "one"}}), "object keys must be strings"),
        (lambda: flatten({"a": math.nan}), "NaN and infinite numbers cannot be signed"),
        (lambda: flatten({"a": [b"x"]}), "unsupported parameter value type: bytes"),
        (lambda: parse_bracket_pairs(42), "parameters must be an iterable of (key, value) pairs"),  # type: ignore[arg-type]
        (lambda: parse_bracket_pairs([("a",)]), "each parameter must be a (key, value) pair"),  # type: ignore[list-item]
        (lambda: parse_bracket_pairs([("a", 1)]), "parameter names and values must be strings"),  # type: ignore[list-item]
        (lambda: parse_query("[a]=1"), "parameter name is empty or starts with '['"),
        (lambda: parse_query("a]=1"), "unbalanced ']' in parameter name"),
        (lambda: parse_query("a[b]c=1"), "unexpected text after ']' in parameter name"),
        (lambda: parse_query("a[b=1"), "unbalanced '[' in parameter name"),
        (lambda: parse_query("a[[b]]=1"), "nested '[' in parameter name"),
        (lambda: parse_query("a=1&a[]=2"), "parameter 'a[]' mixes an array with another type"),
        (lambda: parse_query("a=1&a[b]=2"), "parameter 'a[b]' mixes an object with another type"),
        (lambda: parse_query("k=%FF"), "malformed query string: UnicodeDecodeError"),
        (lambda: form_encode("\ud800"), "parameter text is not encodable as UTF-8"),
    ],
)
def test_each_refusal_says_what_was_wrong(build: Any, message: str) -> None:
    """These words reach the API client whose request was refused, and the operator's log."""
    with pytest.raises(ParamsError) as refused:
        build()
    assert str(refused.value) == message
