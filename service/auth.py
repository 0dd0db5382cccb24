"""API keys: each tenant has its own; the service keeps only their sha256."""

from __future__ import annotations

import hashlib
import secrets


def new_api_key(tenant: str) -> str:
    """A fresh key. The tenant id is a readable hint only: the key is checked by its hash."""
    return f"mk_{tenant}_{secrets.token_urlsafe(24)}"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    def __init__(self, digests: dict[str, str]):
        """`digests`: sha256 hex of a key -> tenant id."""
        self._by_digest = dict(digests)

    def tenant_of(self, key: str | None) -> str | None:
        if not key:
            return None
        # looked up by digest: the clear key is never compared, so timing reveals nothing of it
        return self._by_digest.get(key_digest(key))


def key_from_headers(headers) -> str | None:
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key")
