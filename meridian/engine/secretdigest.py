"""Digests of a plan's secret values, so that a diff can say a secret changed without showing it.

A plan shows every secret as `[secret]`, so two plans whose secrets differ look the same; a real
`pulumi preview` knows the values and shows the update. Each secret input is recorded as an
HMAC-SHA256 under a key that stays with whoever made the plan: `MERIDIAN_PLAN_DIGEST_KEY` (CI sets
one random key per job, for the base and the head preview alike), else a random key kept in
`~/.cache/meridian/plan-digest.key` (mode 0600). A keyed digest cannot be reversed by guessing
values without the key. Plans made under different keys cannot be compared: the plan records the
key's id (a hash of the key) and the diff says so instead of guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from meridian.engine.recorder import OUTPUT_SIG, SECRET_SIG, SIG_KEY, UNKNOWN, Registration

KEY_ENV = "MERIDIAN_PLAN_DIGEST_KEY"
UNKNOWN_DIGEST = "unknown"  # a secret whose value is only known after apply


def _key_file() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "meridian" / "plan-digest.key"


def digest_key() -> bytes:
    """This machine's (or CI job's) key: from the environment, else created once and kept."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    path = _key_file()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"meridian plan digest key:" + key).hexdigest()[:16]


def _secrets(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    """(path, value) of every secret inside a wire-format value; paths as the plan diff writes them."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            yield path, value.get("value")
            return
        if sig == OUTPUT_SIG:
            if value.get("secret"):
                yield path, value.get("value", UNKNOWN)
            else:
                yield from _secrets(value.get("value"), path)
            return
        for k in sorted(value):
            yield from _secrets(value[k], f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _secrets(v, f"{path}[{i}]")


_MARKS = (SECRET_SIG.encode(), OUTPUT_SIG.encode())


def _may_hold_secrets(wire: bytes) -> bool:
    """Whether serialized inputs may hold a secret: `_secrets` finds one only in a value marked with
    the secret or the output signature, and a Struct holds its strings' bytes as they are, so
    inputs whose bytes contain neither signature hold none (most resources: decoding each to look
    was most of writing the plan's `secrets` at 1,000 tenants)."""
    return any(mark in wire for mark in _MARKS)


def secret_digests(registrations: Iterable[Registration], key: bytes) -> dict[str, dict[str, str]]:
    """URN -> secret input path -> its keyed digest (`unknown` for a value known only after apply)."""
    out: dict[str, dict[str, str]] = {}
    for reg in registrations:
        if not _may_hold_secrets(reg.wire):
            continue
        found = {}
        for path, value in _secrets(json_format.MessageToDict(reg.inputs), ""):
            if value is None or value == UNKNOWN:
                found[path] = UNKNOWN_DIGEST
            else:
                canonical = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
                found[path] = hmac.new(key, canonical, hashlib.sha256).hexdigest()[:32]
        if found:
            out[reg.urn] = found
    return out


def plan_secrets(registrations: Iterable[Registration]) -> dict[str, Any]:
    """The plan JSON's `secrets` section."""
    key = digest_key()
    return {"key_id": key_id(key), "digests": secret_digests(registrations, key)}
