"""Authy's ``xml`` format: the JSON answers rendered as Rails' ``Hash#to_xml`` renders them.

Authy was a Rails application and its ``/protected/xml/...`` paths answered with Rails'
XML: a ``<hash>`` root, dasherized element names, ``type`` attributes for non-strings and
``nil="true"`` for null. The exact root and array element names real Authy used are not
public; this follows Rails' defaults, which the old authy-java XML client read.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def dumps(body: Any) -> bytes:
    """The XML document for a JSON-like body (an object at the top, as every answer is)."""
    inner = _element("hash", body if isinstance(body, dict) else {"value": body}, 1)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + inner + "\n").encode("utf-8")


def _tag(key: str) -> str:
    name = key.replace("_", "-")
    return name if _NAME.fullmatch(name) else "item"


def _element(name: str, value: Any, depth: int) -> str:
    pad = "  " * depth
    if isinstance(value, dict):
        if not value:
            return f"<{name}/>"
        children = "".join(
            f"\n{pad}{_element(_tag(str(k)), v, depth + 1)}" for k, v in value.items()
        )
        return f"<{name}>{children}\n{pad[:-2]}</{name}>"
    if isinstance(value, list):
        if not value:
            return f'<{name} type="array"/>'
        child = name[:-1] if name.endswith("s") and len(name) > 1 else f"{name}-item"
        children = "".join(f"\n{pad}{_element(child, v, depth + 1)}" for v in value)
        return f'<{name} type="array">{children}\n{pad[:-2]}</{name}>'
    if value is None:
        return f'<{name} nil="true"/>'
    if isinstance(value, bool):
        return f'<{name} type="boolean">{"true" if value else "false"}</{name}>'
    if isinstance(value, int):
        return f'<{name} type="integer">{value}</{name}>'
    if isinstance(value, float):
        return f'<{name} type="float">{value!r}</{name}>'
    return f"<{name}>{escape(_NOT_XML.sub(chr(0xFFFD), str(value)))}</{name}>"


__all__ = ["dumps"]
