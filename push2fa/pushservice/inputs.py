"""Reading Authy API parameters the way real Authy accepts them.

Official clients disagree on encoding (python posts JSON, ruby a bracket form, php puts
everything in the query), so parameters from the query, the form body and a JSON body are
merged, later sources winning. Bodies are parsed by content, not trusted by Content-Type.
Anything malformed becomes a 400 in Authy's error shape, never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from quart import request

from push2fa.authy.params import ParamsError, parse_bracket_pairs, parse_query

from .errors import invalid_parameter, invalid_request, user_not_valid
from .store import NewApprovalRequest

MESSAGE_MAX = 200
DETAIL_KEY_MAX = 20  # Authy's docs: "Max 20 characters for the Key"
DETAIL_MAX = 200
LOGO_URL_MAX = 500
LOGO_RESOLUTIONS = frozenset({"default", "low", "med", "high"})
DEFAULT_SECONDS_TO_EXPIRE = 86400
MAX_SECONDS_TO_EXPIRE = 2**31 - 1

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_PHONE_CHARS = re.compile(r"[0-9 ().\-]+")
_COUNTRY_CODE = re.compile(r"\+?[0-9]{1,4}")


async def request_params() -> dict[str, Any]:
    """The merged query, form and JSON parameters of the current request."""
    try:
        merged = parse_query(request.query_string)
        if request.mimetype == "multipart/form-data":
            form = await request.form
            return _merge(merged, parse_bracket_pairs(form.items(multi=True)))
        body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        return _merge(merged, _parse_body(body, request.mimetype))
    except ValueError as exc:  # ParamsError, or a multipart body the parser refused
        raise invalid_request(f"Invalid request: {exc}") from None


def _parse_body(body: bytes, mimetype: str) -> dict[str, Any]:
    if not body.strip():
        return {}
    if mimetype == "application/x-www-form-urlencoded":
        return parse_query(body)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        if mimetype == "application/json" or mimetype.endswith("+json"):
            raise ParamsError("the body is not valid JSON") from None
        return parse_query(body)  # a form sent without (or with a wrong) Content-Type
    if not isinstance(data, dict):
        raise ParamsError("the JSON body must be an object")
    check_unicode(data)
    return data


def check_unicode(node: Any, depth: int = 0) -> None:
    """JSON escapes can spell lone surrogates (``"\\ud800"``), which no UTF-8 text holds:
    stored, they would make the callback impossible to sign or send. Refuse them here,
    where every JSON body comes in (forms and queries are decoded strictly already)."""
    if depth > 64:
        raise ParamsError("the JSON body is nested too deeply")
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            raise ParamsError("the JSON body holds text that is not valid Unicode") from None
    elif isinstance(node, dict):
        for key, value in node.items():
            check_unicode(key, depth + 1)
            check_unicode(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            check_unicode(item, depth + 1)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _text(value: Any) -> str | None:
    """A scalar parameter as text: forms give strings, JSON may give numbers or booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    return None


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def new_approval_request(params: Mapping[str, Any]) -> NewApprovalRequest:
    message = params.get("message")
    if not isinstance(message, str) or not message.strip():
        raise invalid_parameter("message", "is required")
    if len(message) > MESSAGE_MAX:
        raise invalid_parameter("message", f"must be at most {MESSAGE_MAX} characters")
    return NewApprovalRequest(
        message=message,
        details=_string_map(params.get("details"), "details", DETAIL_KEY_MAX),
        hidden_details=_string_map(params.get("hidden_details"), "hidden_details", DETAIL_MAX),
        logos=_logos(params.get("logos")),
        seconds_to_expire=_seconds_to_expire(params.get("seconds_to_expire")),
    )


def _string_map(value: Any, field: str, key_max: int) -> dict[str, str]:
    if _is_blank(value):
        return {}
    if not isinstance(value, Mapping):
        raise invalid_parameter(field, "must be an object of strings")
    result: dict[str, str] = {}
    for key, item in value.items():
        problem = detail_key_problem(key, key_max)
        if problem is not None:
            raise invalid_parameter(field, problem)
        text = _text(item)
        if text is None or len(text) > DETAIL_MAX:
            raise invalid_parameter(
                field, f"values must be strings of at most {DETAIL_MAX} characters"
            )
        result[key] = text
    return result


def detail_key_problem(key: Any, key_max: int = DETAIL_KEY_MAX) -> str | None:
    """Why a details key cannot be carried by a callback, or None if it can.

    A GET callback sends details as ``approval_request[transaction][details][KEY]=...``
    with array indices collapsed to ``[]`` (spec 2.3), so a key containing ``[`` or ``]``
    cannot be parsed back, and an all-digit key reads as an array index: either way the
    webhook could not rebuild what was signed. Such keys are refused up front. Authy
    documents 20 characters for ``details`` keys; ``hidden_details`` keys get the clients'
    200.
    """
    if not isinstance(key, str) or not key or len(key) > key_max:
        return f"keys must be 1 to {key_max} characters"
    if "[" in key or "]" in key:
        return "keys must not contain '[' or ']'"
    if key.isdigit():
        return "keys must not be only digits"
    return None


def _logos(value: Any) -> tuple[dict[str, str], ...] | None:
    if _is_blank(value):
        return None
    if not isinstance(value, list):
        raise invalid_parameter("logos", "must be a list of {res, url}")
    logos = []
    seen: set[str] = set()
    for logo in value:
        if not isinstance(logo, Mapping) or set(logo) != {"res", "url"}:
            raise invalid_parameter("logos", "must be a list of {res, url}")
        res, url = logo["res"], logo["url"]
        if res not in LOGO_RESOLUTIONS:
            raise invalid_parameter("logos", "res must be default, low, med or high")
        if not isinstance(url, str) or not url or len(url) > LOGO_URL_MAX:
            raise invalid_parameter("logos", f"url must be 1 to {LOGO_URL_MAX} characters")
        if res in seen:  # also caps the list at four, so its order survives a GET callback
            raise invalid_parameter("logos", "may give each resolution only once")
        seen.add(res)
        logos.append({"res": res, "url": url})
    return tuple(logos)


def _seconds_to_expire(value: Any) -> int:
    # authy-python sends null when the caller gave no value: that means the default.
    if value is None or value == "":
        return DEFAULT_SECONDS_TO_EXPIRE
    text = _text(value)
    if text is None or not text.isascii() or not text.isdigit():
        raise invalid_parameter("seconds_to_expire", "must be a whole number of seconds")
    seconds = int(text)
    if seconds > MAX_SECONDS_TO_EXPIRE:
        raise invalid_parameter("seconds_to_expire", "is too large")
    return seconds


def new_user(params: Mapping[str, Any]) -> tuple[str, str, int]:
    """(email, cellphone digits, country code) of ``users/new``, or 400 60027."""
    user = params.get("user")
    fields: Mapping[str, Any] = user if isinstance(user, Mapping) else {}
    email = email_address(fields.get("email"))
    digits = _cellphone(fields.get("cellphone"))
    country = _country_code(fields.get("country_code"))
    if email is None or digits is None or country is None:
        checked = {"email": email, "cellphone": digits, "country_code": country}
        raise user_not_valid({k: "is invalid" for k, v in checked.items() if v is None})
    return email, digits, country


def email_address(value: Any) -> str | None:
    """An e-mail address as ``users/new`` accepts it, or None. Control characters (a NUL
    cannot even be sent to PostgreSQL) are no part of an address."""
    email = _text(value)
    if email is None or len(email) > 254 or not _EMAIL.fullmatch(email):
        return None
    if not email.isprintable():
        return None
    return email


def _cellphone(value: Any) -> str | None:
    phone = _text(value)
    if phone is None or not _PHONE_CHARS.fullmatch(phone):
        return None
    digits = re.sub(r"[^0-9]", "", phone)
    return digits if 7 <= len(digits) <= 15 else None


def _country_code(value: Any) -> int | None:
    country = "1" if _is_blank(value) else _text(value)
    if country is None or not _COUNTRY_CODE.fullmatch(country) or int(country) == 0:
        return None
    return int(country)


def required_text(params: Mapping[str, Any], field: str, max_length: int = 255) -> str:
    value = _text(params.get(field))
    if not value or len(value) > max_length:
        raise invalid_parameter(field, "is required")
    return value


QR_SIZE_DEFAULT = 300  # authy-ruby's default
QR_SIZE_RANGE = range(50, 1001)


def flag(params: Mapping[str, Any], field: str) -> bool:
    """A boolean option such as ``force``: clients send ``true``, ``"true"`` or ``1``."""
    return _text(params.get(field)) in {"true", "1"}


def qr_size(params: Mapping[str, Any]) -> int:
    value = params.get("qr_size")
    if _is_blank(value):
        return QR_SIZE_DEFAULT
    text = _text(value)
    if text is None or not text.isascii() or not text.isdigit() or int(text) not in QR_SIZE_RANGE:
        raise invalid_parameter("qr_size", "must be a number of pixels from 50 to 1000")
    return int(text)


def optional_text(params: Mapping[str, Any], field: str, max_length: int) -> str | None:
    value = params.get(field)
    if _is_blank(value):
        return None
    text = _text(value)
    if text is None or len(text) > max_length:
        raise invalid_parameter(field, f"must be text of at most {max_length} characters")
    return text
