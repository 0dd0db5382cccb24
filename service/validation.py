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

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 32  # arrays/objects inside one another, counted over the whole body
MAX_EVENTS_PER_REQUEST = 1000
MAX_TYPE_CHARS = 100
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
INT64_MAX = 2**63 - 1  # ids are bigserial; cursors compare with them
# the same rule as stackconfig.models.TenantId (tests/test_service_contract.py ties the two)
TENANT_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# JSON Schema (ECMA-262) form of "no NUL"; surrogates are refused too but no pattern can name them
STORABLE_PATTERN = "^[^\\u0000]*$"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,19}")
# in UTF-8 JSON a NUL or a surrogate can only arrive escaped (raw control characters and encoded
# surrogates are refused by the parser): a body without such an escape needs no walk
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


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
    """Whether arrays/objects in `body` nest deeper than `limit` (or their brackets do not pair up),
    brackets inside strings not counted. Runs before the parser, which recurses; every step is a
    C-speed bytes operation, so a hostile megabyte costs milliseconds, not seconds."""
    # escapes first (`\\` before `\"`): then every `"` left delimits a string, and the even
    # pieces of a split on it are what lies outside strings
    outside = b"".join(body.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    brackets = outside.translate(_ONE_KIND, _NOT_BRACKETS)  # depth does not care which kind
    if len(brackets) <= 2 * limit:
        return False  # valid JSON this short nests at most `limit` deep; anything else the parser refuses, shallowly
    for _ in range(limit):
        # one pass removes the innermost pairs, one level of every subtree (replace does not
        # rescan the pairs its removals create)
        shorter = brackets.replace(b"[]", b"")
        if not shorter:
            return False
        if len(shorter) == len(brackets):
            return True  # nothing pairs up: unbalanced
        brackets = shorter
    return True


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def _no_constants(literal: str):
    raise ValueError(f"{literal} is not JSON")


def parse_json(body: bytes):
    """The JSON document in `body` (UTF-8, RFC 8259 section 8.1), depth-checked before parsing."""
    if too_deep(body):
        raise Invalid(f"body nests deeper than {MAX_JSON_DEPTH} levels of arrays/objects (or its brackets do not pair up)")
    try:
        return json.loads(body.decode("utf-8"), parse_float=_finite, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Invalid(f"body must be UTF-8 JSON (RFC 8259): {exc}") from None


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
    escapes = _UNSTORABLE_ESCAPE.search(body) is not None
    if isinstance(doc, dict) and "events" in doc:
        extra = sorted(set(doc) - {"events"})
        if extra:
            raise Invalid(f'unknown field(s) {extra}: a batch is {{"events": [...]}}')
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
            raise Invalid(f'{at} must be an object {{"type", "payload"}}')
        extra = sorted(set(item) - _EVENT_FIELDS)
        if extra:
            raise Invalid(f"{at}: unknown field(s) {extra}; allowed: type, payload")
        type_ = item.get("type")
        if not isinstance(type_, str) or not 0 < len(type_) <= MAX_TYPE_CHARS:
            raise Invalid(f"{at}.type must be a string of 1..{MAX_TYPE_CHARS} characters")
        payload = item.get("payload", {})
        if not isinstance(payload, dict):
            raise Invalid(f"{at}.payload must be an object")
        if escapes:
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


# Object keys: `/`-separated segments of S3's safe characters, none empty and none `.` or `..` (a
# segment starts with a letter, digit, `_` or `-`): what a proxy or SDK might normalise cannot
# occur, so the key the service stores is the key the caller named, always under the tenant prefix.
OBJECT_KEY_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9!_.*'()-]*"
OBJECT_KEY_PATTERN = rf"^{OBJECT_KEY_SEGMENT}(/{OBJECT_KEY_SEGMENT})*$"
OBJECT_PREFIX_PATTERN = r"^[A-Za-z0-9!_.*'()/-]*$"  # a listing filter: any start of a key
MAX_OBJECT_KEY_CHARS = 512  # S3 allows 1,024 bytes; the tenant prefix takes its share
_OBJECT_KEY = re.compile(OBJECT_KEY_PATTERN)
_OBJECT_PREFIX = re.compile(OBJECT_PREFIX_PATTERN)


def object_key(raw: str) -> str:
    if not 0 < len(raw) <= MAX_OBJECT_KEY_CHARS or not _OBJECT_KEY.fullmatch(raw):
        raise Invalid(
            f"object key must be 1..{MAX_OBJECT_KEY_CHARS} characters of `/`-separated segments of "
            f"A-Z a-z 0-9 ! _ . * ' ( ) -, each starting with a letter, digit, _ or - (got {raw[:40]!r})"
        )
    return raw


def object_prefix(raw: str | None) -> str:
    if raw is None:
        return ""
    if len(raw) > MAX_OBJECT_KEY_CHARS or not _OBJECT_PREFIX.fullmatch(raw):
        raise Invalid(
            f"prefix must be at most {MAX_OBJECT_KEY_CHARS} characters of A-Z a-z 0-9 ! _ . * ' ( ) / - (got {raw[:40]!r})"
        )
    return raw
