"""Bracket-notation ("Rack") parameters, the one shape Authy's data takes on the wire.

Authy signs callbacks over a flattened form of the body (`a[b][0][c]=v`), sends GET callbacks
as bracket query strings with the array indices collapsed (`a[b][][c]=v`), and its clients
post forms in the same notation. The signature code, the client and the emulator must agree
on every detail of that mapping, so it lives here once.

Parsing accepts input from the network, so it is defensive: every malformed or ambiguous
input raises `ParamsError` (a `ValueError`) and nothing else, nesting depth and the number of
pairs are capped, and a value is never silently overwritten by a later pair.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "MAX_DEPTH",
    "MAX_PAIRS",
    "ParamsError",
    "flatten",
    "form_encode",
    "parse_bracket_pairs",
    "parse_query",
    "to_query",
]

MAX_DEPTH = 32
"""Deepest nesting accepted, counted in bracket segments after the top-level name."""

MAX_PAIRS = 1000
"""Most key/value pairs accepted in one parse; a real callback has about 40."""

_CANONICAL_INDEX = re.compile(r"0|[1-9][0-9]*")


class ParamsError(ValueError):
    """The parameters cannot be flattened or parsed; the input was malformed or ambiguous."""


# --- flattening -------------------------------------------------------------------------


def flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten a JSON-like mapping to `(bracket_key, value)` pairs, as spec 2.3 steps 1-2.

    Arrays keep their 0-based indices (`logos[0][res]`) so that a later byte-order sort keeps
    elements in order; empty objects and arrays vanish, as they do in Authy's signatures.
    Floats are not expected (the spec says avoid them); a finite float is written with
    Python's shortest round-trip `repr`, which agrees with Ruby's `Float#to_s` and with the
    official Python client for ordinary values. NaN and infinities are rejected.
    """
    return _flatten(params, collapse_indices=False)


def _flatten(params: Mapping[str, Any], *, collapse_indices: bool) -> list[tuple[str, str]]:
    if not isinstance(params, Mapping):
        raise ParamsError("parameters must be a mapping")
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ParamsError("top-level parameter names must be non-empty strings")
        _flatten_into(pairs, key, value, 0, collapse_indices)
    return pairs


def _flatten_into(
    pairs: list[tuple[str, str]], prefix: str, value: Any, depth: int, collapse: bool
) -> None:
    if depth > MAX_DEPTH:
        raise ParamsError(f"parameters nested deeper than {MAX_DEPTH} levels")
    # A JSON body holds only dicts, lists and scalars: their exact types are tested first,
    # so the abstract Mapping/Sequence checks (slow, through the ABC machinery) run only
    # for other containers a caller may pass.
    kind = type(value)
    if kind is dict or (kind is not str and kind is not list and isinstance(value, Mapping)):
        for key, child in value.items():
            if not isinstance(key, str):
                raise ParamsError("object keys must be strings")
            _flatten_into(pairs, f"{prefix}[{key}]", child, depth + 1, collapse)
    elif kind is list or (
        kind is not str
        and isinstance(value, Sequence)
        and not isinstance(value, str | bytes | bytearray)
    ):
        for index, child in enumerate(value):
            segment = "[]" if collapse else f"[{index}]"
            _flatten_into(pairs, prefix + segment, child, depth + 1, collapse)
    else:
        pairs.append((prefix, _scalar_to_str(value)))


def _scalar_to_str(value: Any) -> str:
    """Render one leaf value the way Authy does (spec 2.3 step 2)."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParamsError("NaN and infinite numbers cannot be signed")
        return repr(value)
    raise ParamsError(f"unsupported parameter value type: {type(value).__name__}")


# --- parsing ----------------------------------------------------------------------------

# Segment of a parsed key: a string is an object key (or explicit index), None means `[]`.
_Segment = str | None


def parse_bracket_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild the nested structure from bracket pairs, following Rack's rules.

    `a[b]=v` sets an object key, `a[]=v` appends to an array, and in an array of objects
    (`a[][k]=v`) a sub-key that the last element already holds starts a new element; that
    is how `logos[][res]=default&logos[][url]=…&logos[][res]=med&…` becomes two logos.
    Explicit indices (`a[0][k]`) are accepted too: an object whose keys are exactly
    `0..n-1` becomes a list. Conflicts that Rack resolves by overwriting (`a=1&a=2`,
    `a[b]=1&a=2`) are rejected instead, because a verifier must not guess which value was
    signed.
    """
    root: dict[str, Any] = {}
    try:
        iterator = iter(pairs)
    except TypeError:
        raise ParamsError("parameters must be an iterable of (key, value) pairs") from None
    for count, pair in enumerate(iterator, start=1):
        if count > MAX_PAIRS:
            raise ParamsError(f"more than {MAX_PAIRS} parameters")
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ParamsError("each parameter must be a (key, value) pair")
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise ParamsError("parameter names and values must be strings")
        head, segments = _split_key(name)
        _assign(root, head, segments, value, name)
    return {key: _finish(value) for key, value in root.items()}


def _split_key(name: str) -> tuple[str, list[_Segment]]:
    """Split `a[b][][c]` into `("a", ["b", None, "c"])`, rejecting anything malformed."""
    start = name.find("[")
    head = name if start < 0 else name[:start]
    if not head:
        raise ParamsError("parameter name is empty or starts with '['")
    if "]" in head:
        raise ParamsError("unbalanced ']' in parameter name")
    segments: list[_Segment] = []
    position = start
    while 0 <= position < len(name):
        if name[position] != "[":
            raise ParamsError("unexpected text after ']' in parameter name")
        end = name.find("]", position + 1)
        if end < 0:
            raise ParamsError("unbalanced '[' in parameter name")
        inner = name[position + 1 : end]
        if "[" in inner:
            raise ParamsError("nested '[' in parameter name")
        segments.append(inner if inner else None)
        if len(segments) > MAX_DEPTH:
            raise ParamsError(f"parameters nested deeper than {MAX_DEPTH} levels")
        position = end + 1
    return head, segments


def _assign(
    container: dict[str, Any], key: str, segments: list[_Segment], value: str, name: str
) -> None:
    """Store `value` at `container[key]` followed by `segments`, creating containers."""
    if not segments:
        if key in container:
            raise ParamsError(f"parameter {_shown(name)} conflicts with an earlier one")
        container[key] = value
        return
    head, rest = segments[0], segments[1:]
    if head is None:
        array = container.setdefault(key, [])
        if not isinstance(array, list):
            raise ParamsError(f"parameter {_shown(name)} mixes an array with another type")
        _append(array, rest, value, name)
        return
    child = container.setdefault(key, {})
    if not isinstance(child, dict):
        raise ParamsError(f"parameter {_shown(name)} mixes an object with another type")
    _assign(child, head, rest, value, name)


def _append(array: list[Any], segments: list[_Segment], value: str, name: str) -> None:
    """Handle the part after `[]`: extend the last element or start a new one (Rack)."""
    if not segments:
        array.append(value)
        return
    head, rest = segments[0], segments[1:]
    if head is None:
        # `a[][]=v`: an array of arrays; every such pair starts a new inner array.
        inner: list[Any] = []
        _append(inner, rest, value, name)
        array.append(inner)
        return
    if array and isinstance(array[-1], dict) and not _collides(array[-1], segments):
        _assign(array[-1], head, rest, value, name)
        return
    element: dict[str, Any] = {}
    _assign(element, head, rest, value, name)
    array.append(element)


def _shown(name: str) -> str:
    """Quote a parameter name for an error message, shortened: names come from strangers."""
    return repr(name if len(name) <= 60 else name[:57] + "...")


def _collides(node: dict[str, Any], segments: list[_Segment]) -> bool:
    """Would writing `segments` into `node` hit something already there?"""
    current: Any = node
    for segment in segments:
        if segment is None:
            return not isinstance(current, list)
        if not isinstance(current, dict):
            return True
        if segment not in current:
            return False
        current = current[segment]
    return True


def _finish(node: Any) -> Any:
    """Turn objects keyed exactly `0..n-1` (explicit indices) into lists, recursively."""
    if isinstance(node, list):
        return [_finish(item) for item in node]
    if not isinstance(node, dict):
        return node
    finished = {key: _finish(value) for key, value in node.items()}
    if finished and all(_CANONICAL_INDEX.fullmatch(key) for key in finished):
        indices = sorted(int(key) for key in finished)
        if indices == list(range(len(indices))):
            return [finished[str(index)] for index in indices]
    return finished


def parse_query(query: str | bytes) -> dict[str, Any]:
    """Parse a URL-encoded query or form body into nested parameters.

    Blank values are kept (`logos=` is how a null travels in a GET callback). Bytes must be
    UTF-8, and so must every percent-escape.
    """
    if isinstance(query, bytes | bytearray):
        try:
            query = bytes(query).decode("utf-8")
        except UnicodeDecodeError:
            raise ParamsError("query string is not valid UTF-8") from None
    if not isinstance(query, str):
        raise ParamsError("query string must be str or bytes")
    try:
        pairs = parse_qsl(
            query,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PAIRS,
        )
    except ValueError as exc:  # includes UnicodeDecodeError and "too many fields"
        raise ParamsError(f"malformed query string: {type(exc).__name__}") from None
    return parse_bracket_pairs(pairs)


# --- encoding ---------------------------------------------------------------------------


# Every byte but A-Za-z0-9-_.~ is escaped; a space becomes "+".
_ESCAPES = {chr(byte): f"%{byte:02X}" for byte in range(256)} | {" ": "+"}
_UNSAFE = re.compile(r"[^A-Za-z0-9\-_.~]")


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def form_encode(text: str) -> str:
    """Percent-encode UTF-8, leaving only `A-Za-z0-9-_.~`, with spaces as `+` (spec 2.3.3).

    A regular expression finds the few characters to escape (a callback's base64 device
    signature has a dozen in 344): twice as fast as `urllib.parse.quote`, which looks up
    every byte in Python; the tests hold the two to the same output."""
    if not text.isascii():
        try:
            # One character per UTF-8 byte, so each byte is escaped on its own.
            text = text.encode("utf-8").decode("latin-1")
        except UnicodeEncodeError:
            raise ParamsError("parameter text is not encodable as UTF-8") from None
    return _UNSAFE.sub(_escape, text)


def to_query(params: Mapping[str, Any]) -> str:
    """Encode parameters as a bracket query string with array indices collapsed to `[]`.

    That is the form Authy uses for GET callbacks and form-encoding clients use for bodies,
    so `parse_query(to_query(body)) == body` for realistic bodies: string leaves, no empty
    containers, and arrays of objects whose elements each start with the same key.
    """
    return "&".join(
        f"{form_encode(key)}={form_encode(value)}"
        for key, value in _flatten(params, collapse_indices=True)
    )
