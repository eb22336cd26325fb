"""X-Authy-Signature: the HMAC that proves a OneTouch callback came from Authy.

The webhook verifies it and the emulator creates it, so both use this one implementation
of spec 2.3. The canonical parameter string is subtle (sorting happens *before* array
indices are collapsed, so array elements keep their order) and was reverse-engineered from
public vectors; the tests pin it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from push2fa.authy.params import flatten, form_encode, parse_query

__all__ = ["Params", "canonical_params", "collapse_indices", "sign", "sorted_pairs", "verify"]

_ENCODED_INDEX = re.compile(r"%5B[0-9]+%5D")


Params = Mapping[str, Any] | str | bytes
"""A parsed JSON body (POST callback) or the raw query string (GET callback)."""


# Callbacks repeat the same few dozen bracket keys; encoding one is a Python loop over its
# characters. A bounded cache: keys a stranger makes up only push others out of it.
_encode_key = functools.lru_cache(maxsize=1024)(form_encode)


def collapse_indices(encoded: str) -> str:
    """Array indices, form-encoded (``%5B0%5D``), collapsed to ``%5B%5D`` as Authy does."""
    return _ENCODED_INDEX.sub("%5B%5D", encoded)


def sorted_pairs(tree: Mapping[str, Any]) -> list[str]:
    """The form-encoded `key=value` pairs of spec 2.3 steps 1-4, sorted while array indices
    are still in the keys (so elements keep their order), not yet collapsed."""
    return sorted(f"{_encode_key(key)}={form_encode(value)}" for key, value in flatten(tree))


def canonical_params(params: Params) -> str:
    """Build the signed parameter string from a JSON body or a raw GET query string.

    A query string arrives with its indices already collapsed, so it is parsed back into a
    nested structure (Rack rules) and then goes through the same steps as a JSON body. Pass
    the raw string (Quart's `request.query_string`), not `request.args`: a flat multidict
    keeps one value per bracket key and would lose array elements.
    Raises `ParamsError` for input that cannot be canonicalised.
    """
    tree = parse_query(params) if isinstance(params, str | bytes) else params
    return collapse_indices("&".join(sorted_pairs(tree)))


def _url_without_query(url: str) -> str:
    """Authy signs the URL "without any parameters": drop the query and any fragment."""
    for separator in ("?", "#"):
        url = url.split(separator, 1)[0]
    return url


def sign(api_key: str, nonce: str, method: str, url: str, params: Params) -> str:
    """Return the base64 X-Authy-Signature for a callback, as Authy computes it.

    `method` is used exactly as given (Authy sends upper case); `url` is the public callback
    URL, whose query string, if any, is ignored.
    """
    if not api_key:
        raise ValueError("an empty API key would make every signature forgeable")
    data = "|".join((nonce, method, _url_without_query(url), canonical_params(params)))
    digest = hmac.new(api_key.encode("utf-8"), data.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(
    api_key: str,
    nonce: str,
    method: str,
    url: str,
    params: Params,
    signature: str,
) -> bool:
    """Check a callback's X-Authy-Signature in constant time.

    Every argument may come from a stranger, so anything unusable (a missing header, a
    non-string, a malformed body, an empty key) is simply "not valid": this never raises.
    """
    texts = (api_key, nonce, method, url, signature)
    if not all(isinstance(text, str) for text in texts) or not api_key or not signature:
        return False
    if not isinstance(params, str | bytes | Mapping):
        return False
    try:
        expected = sign(api_key, nonce, method, url, params).encode("ascii")
        given = signature.encode("utf-8")
    except (ValueError, TypeError):  # ParamsError and UnicodeError are ValueErrors
        return False
    return hmac.compare_digest(expected, given)
