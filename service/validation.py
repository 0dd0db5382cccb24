"""Input validation: every bound the OpenAPI contract (`service/openapi.py`) states is enforced here.

What the database cannot store is refused before it gets there, with 400 naming where it is:
PostgreSQL refuses NUL (U+0000) in `text` and `\\u0000` in `jsonb`, and a lone UTF-16 surrogate
(U+D800-U+DFFF) has no UTF-8 form at all. Bodies are bounded in bytes while they are read and in
nesting depth before they are parsed (the JSON parser recurses), and numbers are finite: `NaN`,
`Infinity` and overflowing literals such as `1e400` are not JSON PostgreSQL accepts.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 32  # arrays/objects inside one another, counted over the whole body
MAX_EVENTS_PER_REQUEST = 1000
MAX_TYPE_CHARS = 100
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
INT64_MAX = 2**63 - 1  # ids are bigserial; cursors compare with them
# the same rule as components/config.py's TenantId (tests/test_service_contract.py ties the two)
TENANT_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# JSON Schema (ECMA-262) form of "no NUL"; surrogates are refused too but no pattern can name them
STORABLE_PATTERN = "^[^\\u0000]*$"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,19}")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class Invalid(Exception):
    """A request the contract does not allow: rendered as `{"error": code, "message": ...}`."""

    def __init__(self, message: str, *, status: int = 400, error: str = "bad_request"):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def unstorable(text: str) -> str | None:
    """Why PostgreSQL could not store `text`, or None."""
    m = _UNSTORABLE.search(text)
    if m is None:
        return None
    ch = m.group()
    if ch == "\x00":
        return "contains NUL (U+0000), which PostgreSQL cannot store"
    return f"contains a lone surrogate (U+{ord(ch):04X}), which has no UTF-8 form"


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects in `body` nest deeper than `limit` (brackets inside strings not
    counted). Linear and without recursion: it runs before the parser, which recurses."""
    structure = _JSON_STRING.sub(b"", body)
    if structure.count(b"[") + structure.count(b"{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub(b"", structure)
    return max(accumulate(_STEP[c] for c in brackets)) > limit


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def _no_constants(literal: str):
    raise ValueError(f"{literal} is not JSON")


def parse_json(body: bytes):
    if too_deep(body):
        raise Invalid(f"body nests deeper than {MAX_JSON_DEPTH} levels of arrays/objects")
    try:
        return json.loads(body, parse_float=_finite, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Invalid(f"body must be JSON (RFC 8259): {exc}") from None


def _check_value(value, where: str) -> None:
    """Every string and key in `value` storable; iterative (depth is bounded, but no recursion is cheaper to trust)."""
    stack = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, str):
            why = unstorable(v)
            if why:
                raise Invalid(f"{at} {why}")
        elif isinstance(v, dict):
            for k, item in v.items():
                why = unstorable(k)
                if why:
                    raise Invalid(f"{at}: key {k!r} {why}")
                stack.append((item, f"{at}.{k}"))
        elif isinstance(v, list):
            stack.extend((item, f"{at}[{i}]") for i, item in enumerate(v))


_EVENT_FIELDS = {"type", "payload"}


def parse_events(body: bytes) -> list[tuple[str, dict]]:
    """`{"events": [{"type", "payload"}, ...]}` or one event -> [(type, payload)]; Invalid with where and why."""
    doc = parse_json(body)
    if isinstance(doc, dict) and "events" in doc:
        extra = sorted(set(doc) - {"events"})
        if extra:
            raise Invalid(f"unknown field(s) {extra}: a batch is {{\"events\": [...]}}")
        items, prefix = doc["events"], "events"
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_EVENTS_PER_REQUEST:
            raise Invalid(f"events must be an array of 1..{MAX_EVENTS_PER_REQUEST} events")
    elif isinstance(doc, dict):
        items, prefix = [doc], "event"
    else:
        raise Invalid('body must be {"events": [{"type": str, "payload": object}, ...]} or one event')
    out = []
    for i, item in enumerate(items):
        at = f"{prefix}[{i}]" if prefix == "events" else prefix
        if not isinstance(item, dict):
            raise Invalid(f"{at} must be an object {{\"type\", \"payload\"}}")
        extra = sorted(set(item) - _EVENT_FIELDS)
        if extra:
            raise Invalid(f"{at}: unknown field(s) {extra}; allowed: type, payload")
        type_ = item.get("type")
        if not isinstance(type_, str) or not 0 < len(type_) <= MAX_TYPE_CHARS:
            raise Invalid(f"{at}.type must be a string of 1..{MAX_TYPE_CHARS} characters")
        payload = item.get("payload", {})
        if not isinstance(payload, dict):
            raise Invalid(f"{at}.payload must be an object")
        _check_value(type_, f"{at}.type")
        _check_value(payload, f"{at}.payload")
        out.append((type_, payload))
    return out


def int64_param(raw: str | None, name: str, *, default: int, minimum: int, maximum: int = INT64_MAX) -> int:
    """A decimal integer in [minimum, maximum] (ASCII digits only: no sign, spaces, `_` or other scripts' digits)."""
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise Invalid(f"{name} must be an integer in {minimum}..{maximum} (got {raw[:40]!r})")
    return int(raw)


def type_param(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not 0 < len(raw) <= MAX_TYPE_CHARS:
        raise Invalid(f"type must be 1..{MAX_TYPE_CHARS} characters")
    why = unstorable(raw)
    if why:
        raise Invalid(f"type {why}")
    return raw


async def read_body(request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_BODY_BYTES (declared or streamed)."""
    too_large = Invalid(f"the body must be at most {MAX_BODY_BYTES} bytes", status=413, error="body_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
