"""X-Authy-Signature: public vectors, the canonical string rules, and refusal of forgeries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from push2fa.authy import signature
from push2fa.authy.params import ParamsError, to_query
from push2fa.authy.signature import canonical_params, sign, verify
from tests.authy.test_params import realistic_bodies

VECTORS_FILE = Path(__file__).resolve().parent / "vectors" / "authy-signature-vectors.json"


def _load_vectors() -> list[dict[str, Any]]:
    """Public vectors from the official clients' test suites (sources in vectors/README.md)."""
    with VECTORS_FILE.open(encoding="utf-8") as handle:
        document: dict[str, list[dict[str, Any]]] = json.load(handle)
    return document["authy_onetouch"]


VECTORS = _load_vectors()


def _signed_params(vector: dict[str, Any]) -> dict[str, Any]:
    # Vectors 1-2 come from a test that mocked the parameter builder: they sign "".
    params: dict[str, Any] = vector.get("body_json", {})
    return params


# --- public vectors ---------------------------------------------------------------------


def test_the_vector_file_has_every_vector_the_spec_lists() -> None:
    assert {vector["id"] for vector in VECTORS} >= {1, 2, 3, 4, 5, 13}


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: f"vector-{vector['id']}")
def test_sign_reproduces_public_vector(vector: dict[str, Any]) -> None:
    signature = sign(
        vector["api_key"], vector["nonce"], vector["method"], vector["url"], _signed_params(vector)
    )

    assert signature == vector["expected_signature"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: f"vector-{vector['id']}")
def test_verify_accepts_public_vector(vector: dict[str, Any]) -> None:
    assert verify(
        vector["api_key"],
        vector["nonce"],
        vector["method"],
        vector["url"],
        _signed_params(vector),
        vector["expected_signature"],
    )


@pytest.mark.parametrize(
    "vector",
    [vector for vector in VECTORS if "canonical_param_string" in vector],
    ids=lambda vector: f"vector-{vector['id']}",
)
def test_canonical_params_match_public_vector(vector: dict[str, Any]) -> None:
    assert canonical_params(_signed_params(vector)) == vector["canonical_param_string"]


def test_empty_get_query_signs_like_an_empty_body() -> None:
    vector = next(vector for vector in VECTORS if vector["method"] == "GET")

    assert verify(
        vector["api_key"], vector["nonce"], "GET", vector["url"], "", vector["expected_signature"]
    )


# --- the canonical string, pinned by hand from spec 2.3 ---------------------------------------

CALLBACK_WITH_ARRAYS = {
    "authy_id": 42,
    "device": {"enabled_unlock_methods": ["pin", "fingerprint"], "multidevice_enabled": False},
    "approval_request": {
        "logos": [
            {"res": "default", "url": "https://cdn.example/d.png"},
            {"res": "med", "url": "https://cdn.example/m.png"},
        ],
        "transaction": {"status": "approved", "hidden_details": None, "device_details": {}},
    },
}

# Built by hand: flatten with indices, encode, sort byte-wise, then collapse the indices.
# Logo 0's res and url come before logo 1's, and "pin" stays before "fingerprint";
# a sort after collapsing (or by value) would put both res entries first and fingerprint first.
CALLBACK_WITH_ARRAYS_CANONICAL = (
    "approval_request%5Blogos%5D%5B%5D%5Bres%5D=default"
    "&approval_request%5Blogos%5D%5B%5D%5Burl%5D=https%3A%2F%2Fcdn.example%2Fd.png"
    "&approval_request%5Blogos%5D%5B%5D%5Bres%5D=med"
    "&approval_request%5Blogos%5D%5B%5D%5Burl%5D=https%3A%2F%2Fcdn.example%2Fm.png"
    "&approval_request%5Btransaction%5D%5Bhidden_details%5D="
    "&approval_request%5Btransaction%5D%5Bstatus%5D=approved"
    "&authy_id=42"
    "&device%5Benabled_unlock_methods%5D%5B%5D=pin"
    "&device%5Benabled_unlock_methods%5D%5B%5D=fingerprint"
    "&device%5Bmultidevice_enabled%5D=false"
)

# The same callback as Authy sends it by GET: indices collapsed, any pair order.
CALLBACK_WITH_ARRAYS_QUERY = (
    "device%5Benabled_unlock_methods%5D%5B%5D=pin"
    "&device%5Benabled_unlock_methods%5D%5B%5D=fingerprint"
    "&device%5Bmultidevice_enabled%5D=false"
    "&authy_id=42"
    "&approval_request%5Btransaction%5D%5Bstatus%5D=approved"
    "&approval_request%5Btransaction%5D%5Bhidden_details%5D="
    "&approval_request%5Blogos%5D%5B%5D%5Bres%5D=default"
    "&approval_request%5Blogos%5D%5B%5D%5Burl%5D=https%3A%2F%2Fcdn.example%2Fd.png"
    "&approval_request%5Blogos%5D%5B%5D%5Bres%5D=med"
    "&approval_request%5Blogos%5D%5B%5D%5Burl%5D=https%3A%2F%2Fcdn.example%2Fm.png"
)


def test_canonical_params_of_a_json_callback_keep_array_order() -> None:
    assert canonical_params(CALLBACK_WITH_ARRAYS) == CALLBACK_WITH_ARRAYS_CANONICAL


def test_canonical_params_of_a_get_query_match_the_hand_built_string() -> None:
    assert canonical_params(CALLBACK_WITH_ARRAYS_QUERY) == CALLBACK_WITH_ARRAYS_CANONICAL


def test_get_and_post_forms_of_one_callback_share_a_signature() -> None:
    args = ("key", "1700000000", "GET", "https://app.example/webhooks/authy")

    assert sign(*args, CALLBACK_WITH_ARRAYS_QUERY) == sign(*args, CALLBACK_WITH_ARRAYS)


def test_a_query_string_may_be_given_as_bytes() -> None:
    assert canonical_params(CALLBACK_WITH_ARRAYS_QUERY.encode()) == CALLBACK_WITH_ARRAYS_CANONICAL


def test_spec_worked_example() -> None:
    body = {"foo": {"bar": {"biz": "foo bar"}}, "qux": "net"}

    assert canonical_params(body) == "foo%5Bbar%5D%5Bbiz%5D=foo+bar&qux=net"
    assert (
        sign("foo", "1455825429", "POST", "https://foo.bar/", body)
        == "+fyGys+d5yNJx9SpeKZdf+N77od1t1cC/fVSWDW2+kY="
    )


def test_reordering_an_array_changes_the_signature() -> None:
    swapped = {"device": {"enabled_unlock_methods": ["fingerprint", "pin"]}}
    original = {"device": {"enabled_unlock_methods": ["pin", "fingerprint"]}}
    args = ("key", "1", "POST", "https://app.example/cb")

    assert sign(*args, swapped) != sign(*args, original)


def test_arrays_past_ten_elements_sort_their_indices_as_text() -> None:
    # Spec 2.3 step 4 sorts strings with indices in place: index 10 sorts before index 2.
    body = {"a": [str(i) for i in range(11)]}

    assert canonical_params(body) == "&".join(
        f"a%5B%5D={value}" for value in ["0", "1", "10", "2", "3", "4", "5", "6", "7", "8", "9"]
    )


def test_numeric_object_keys_collapse_like_indices() -> None:
    # Spec 2.4 quirk (b): every client collapses them, so the signature does too.
    assert canonical_params({"details": {"123": "x"}}) == "details%5B%5D=x"


def test_canonical_params_encode_reserved_characters_and_unicode() -> None:
    body = {"message": "a b/c|d&e=f+g~h*i", "who": "Zoë ✓"}

    assert canonical_params(body) == (
        "message=a+b%2Fc%7Cd%26e%3Df%2Bg~h%2Ai&who=Zo%C3%AB+%E2%9C%93"
    )


def test_canonical_params_reject_what_cannot_be_signed() -> None:
    with pytest.raises(ParamsError):
        canonical_params("a=1&a[b]=2")
    with pytest.raises(ParamsError):
        canonical_params({"x": float("nan")})


# --- sign/verify round trips ----------------------------------------------------------------

KEY = "bE7YdVJgU9mQ2cKx4hWn6pLs8tRz3aFo"
NONCE = "1700000123"
URL = "https://push2fa.example/webhooks/authy"

BODIES: dict[str, dict[str, Any]] = {
    "logos": {
        "approval_request": {
            "logos": [
                {"res": "default", "url": "https://x.example/d.png"},
                {"res": "low", "url": "https://x.example/l.png"},
            ]
        }
    },
    "array of strings": {"device": {"enabled_unlock_methods": ["pin", "fingerprint", "face"]}},
    "nulls": {"reason": None, "approval_request": {"logos": None, "details": None}},
    "booleans": {"encrypted": False, "flagged": True, "multidevice_enabled": False},
    "nested empty objects": {"transaction": {"device_details": {}, "hidden": {"deeper": {}}}},
    "unicode": {"message": "Anmeldung bestätigen? 登录 🔐", "details": {"Ort": "Zürich"}},
    "spaces and separators": {"message": "a / b | c & d = e + f", "details": {"k y": "v a l"}},
    "integers": {"authy_id": 688611, "device_signing_time": 1512940918, "zero": 0},
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_post_callback_round_trips_through_sign_and_verify(body: dict[str, Any]) -> None:
    signature = sign(KEY, NONCE, "POST", URL, body)

    assert len(signature) == 44
    assert verify(KEY, NONCE, "POST", URL, body, signature)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_get_callback_verifies_as_its_query_string(body: dict[str, Any]) -> None:
    signature = sign(KEY, NONCE, "GET", URL, body)

    assert verify(KEY, NONCE, "GET", URL, to_query(body), signature)


@given(realistic_bodies)
def test_any_realistic_body_signs_the_same_as_its_query_string(body: dict[str, Any]) -> None:
    assert canonical_params(to_query(body)) == canonical_params(body)


def test_signature_ignores_the_query_string_of_the_url() -> None:
    body = {"status": "approved"}

    assert sign(KEY, NONCE, "POST", URL + "?utm=1#top", body) == sign(KEY, NONCE, "POST", URL, body)


SIGNED_BODY = BODIES["logos"]
SIGNATURE = sign(KEY, NONCE, "POST", URL, SIGNED_BODY)


@pytest.mark.parametrize(
    ("api_key", "nonce", "method", "url", "params"),
    [
        pytest.param("another-key", NONCE, "POST", URL, SIGNED_BODY, id="key"),
        pytest.param(KEY, "1700000124", "POST", URL, SIGNED_BODY, id="nonce"),
        pytest.param(KEY, NONCE, "GET", URL, SIGNED_BODY, id="method"),
        pytest.param(KEY, NONCE, "post", URL, SIGNED_BODY, id="method-case"),
        pytest.param(KEY, NONCE, "POST", "http://push2fa.example/webhooks/authy", SIGNED_BODY,
                     id="url-scheme"),
        pytest.param(KEY, NONCE, "POST", URL + "/", SIGNED_BODY, id="url-path"),
        pytest.param(KEY, NONCE, "POST", URL, {"approval_request": {"logos": [
            {"res": "default", "url": "https://evil.example/d.png"},
            {"res": "low", "url": "https://x.example/l.png"},
        ]}}, id="body-value"),
        pytest.param(KEY, NONCE, "POST", URL, {"approval_request": {"logos": [
            {"res": "low", "url": "https://x.example/l.png"},
            {"res": "default", "url": "https://x.example/d.png"},
        ]}}, id="body-array-order"),
        pytest.param(KEY, NONCE, "POST", URL, {**SIGNED_BODY, "status": "approved"},
                     id="body-extra-field"),
        pytest.param(KEY, NONCE, "POST", URL, {}, id="body-empty"),
    ],
)  # fmt: skip
def test_verify_rejects_anything_tampered(
    api_key: str, nonce: str, method: str, url: str, params: dict[str, Any]
) -> None:
    assert verify(KEY, NONCE, "POST", URL, SIGNED_BODY, SIGNATURE)
    assert not verify(api_key, nonce, method, url, params, SIGNATURE)


def _flip_one_character(signature: str) -> str:
    replacement = "A" if signature[10] != "A" else "B"
    return signature[:10] + replacement + signature[11:]


@pytest.mark.parametrize(
    "signature",
    [
        _flip_one_character(SIGNATURE),
        SIGNATURE[:-1],
        SIGNATURE + "=",
        " " + SIGNATURE,
        "",
        "not base64 at all!",
        "=" * 44,
        "é" * 44,
        "\ud800",
        None,
        12345,
        SIGNATURE.encode(),
        ["list"],
    ],
)
def test_verify_returns_false_for_garbage_signatures(signature: Any) -> None:
    assert verify(KEY, NONCE, "POST", URL, SIGNED_BODY, signature) is False


@pytest.mark.parametrize(
    "params",
    [
        "a=1&a[b]=2",
        "k=%FF",
        "a" + "[x]" * 40 + "=1",
        {"x": float("nan")},
        {"x": object()},
        {1: "non-string key"},
        ["not", "a", "mapping"],
        None,
        b"k=\xff",
    ],
)
def test_verify_returns_false_for_params_that_cannot_be_canonicalised(params: Any) -> None:
    assert verify(KEY, NONCE, "POST", URL, params, SIGNATURE) is False


@pytest.mark.parametrize(
    ("api_key", "nonce", "method", "url"),
    [
        ("", NONCE, "POST", URL),
        (None, NONCE, "POST", URL),
        (KEY, None, "POST", URL),
        (KEY, "\ud800", "POST", URL),
        (KEY, NONCE, None, URL),
        (KEY, NONCE, "POST", None),
        (KEY, NONCE, "POST", b"https://push2fa.example/webhooks/authy"),
    ],
)
def test_verify_returns_false_for_garbage_framing(
    api_key: Any, nonce: Any, method: Any, url: Any
) -> None:
    assert verify(api_key, nonce, method, url, SIGNED_BODY, SIGNATURE) is False


def test_sign_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError):
        sign("", NONCE, "POST", URL, SIGNED_BODY)


def test_signature_ignores_everything_after_the_first_question_mark_or_hash() -> None:
    base = "https://login.example.com/webhooks/authy"
    expected = sign("key", "1700000000", "POST", base, {"a": "1"})
    for url in (f"{base}#frag", f"{base}?a=1?b=2", f"{base}?a=1#x?y", f"{base}#x#y"):
        assert sign("key", "1700000000", "POST", url, {"a": "1"}) == expected, url
    assert sign("key", "1700000000", "POST", f"{base}/x", {"a": "1"}) != expected


def test_sign_says_why_it_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="^an empty API key would make every signature forgeable$"):
        sign("", "1700000000", "POST", "https://x/cb", {})


def test_keys_made_up_by_a_stranger_cannot_grow_the_key_cache_without_bound():
    """Signatures are computed before they are known to be good, over any keys a stranger
    sends: the cache of encoded keys stays at its size, and still encodes correctly."""
    for batch in range(5):
        body = {f"k{batch}-{i}[x]": "v" for i in range(1000)}
        canonical_params(body)
    assert signature._encode_key.cache_info().currsize <= 1024
    assert canonical_params({"a b[0]": "c"}) == "a+b%5B%5D=c"
