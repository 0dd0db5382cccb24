"""A bundle's signature: `MANIFEST.sha256.sig` beside `MANIFEST.sha256`, whose bytes it signs (and
which covers every file). Written when an operator configures a key (`--signing-key PATH` or
`$MERIDIAN_SIGNING_KEY`): an Ed25519 private key in PEM signs with Ed25519 (needs `cryptography`),
anything else is an HMAC-SHA256 secret.

Checked by `meridian evidence verify DIR --key PATH` against a key the verifier trusts: for Ed25519
the signer's public key (PEM) or its private key, for HMAC the shared secret. The public key the
signature file carries only names the signer: a signature checked against the key it brought
proves nothing, so it is never used to verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from meridian.errors import BadInput
from meridian.evidence.manifest import MANIFEST, SIGNATURE

SIGNING_KEY_ENV = "MERIDIAN_SIGNING_KEY"


def signing_key_path(option: Path | None) -> Path | None:
    """The configured signing key (`--signing-key`, else `$MERIDIAN_SIGNING_KEY`), checked usable; None: unsigned."""
    path = option or (Path(os.environ[SIGNING_KEY_ENV]) if os.environ.get(SIGNING_KEY_ENV) else None)
    if path is not None and not path.is_file():
        raise BadInput(f"signing key {path} not found (from {'--signing-key' if option else '$' + SIGNING_KEY_ENV})")
    if path is not None:
        check_signing_key(path)
    return path


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise BadInput("the key is a PEM key, but `cryptography` is not installed to use it") from None
    return ed25519, serialization


def _ed25519_private(key_bytes: bytes):
    """The Ed25519 private key in `key_bytes`, or None when it is no PEM private key (an HMAC secret)."""
    if b"PRIVATE KEY" not in key_bytes:
        return None
    ed25519, serialization = _crypto()
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"the key is not a usable PEM private key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BadInput("the key must be an Ed25519 private key (or any other file: an HMAC secret)")
    return key


def _ed25519_public(key_bytes: bytes):
    """The Ed25519 public key a verifier holds: from a PEM public key, or derived from the private key."""
    if b"PUBLIC KEY" in key_bytes:
        ed25519, serialization = _crypto()
        try:
            key = serialization.load_pem_public_key(key_bytes)
        except (ValueError, TypeError) as exc:
            raise BadInput(f"the key is not a usable PEM public key: {exc}") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise BadInput("the public key must be an Ed25519 key")
        return key
    private = _ed25519_private(key_bytes)
    return private.public_key() if private is not None else None


def _key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def check_signing_key(key_path: Path) -> None:
    """Refuse an unusable signing key up front (BadInput), before a bundle is built around it."""
    key_bytes = key_path.read_bytes()
    if _ed25519_private(key_bytes) is None and len(key_bytes.strip()) < 16:
        raise BadInput(f"the HMAC signing key {key_path} is shorter than 16 bytes")


def sign(bundle: Path, key_path: Path) -> dict:
    data = (bundle / MANIFEST).read_bytes()
    key_bytes = key_path.read_bytes()
    key = _ed25519_private(key_bytes)
    if key is not None:
        _, serialization = _crypto()
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        sig = {
            "algorithm": "ed25519",
            "key_id": _key_id(public),
            "public_key": base64.b64encode(public).decode(),
            "signature": base64.b64encode(key.sign(data)).decode(),
        }
    else:
        if len(key_bytes.strip()) < 16:
            raise BadInput(f"the HMAC signing key {key_path} is shorter than 16 bytes")
        sig = {
            "algorithm": "hmac-sha256",
            "key_id": _key_id(key_bytes),
            "signature": hmac.new(key_bytes, data, hashlib.sha256).hexdigest(),
        }
    sig["signs"] = MANIFEST
    (bundle / SIGNATURE).write_text(json.dumps(sig, indent=1) + "\n")
    return sig


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    detail: str


def read_signature(bundle: Path) -> dict | None:
    """The signature file's fields (None when the bundle is unsigned); BadInput when it is malformed."""
    path = bundle / SIGNATURE
    if not path.is_file():
        return None
    try:
        sig = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not JSON ({exc})") from None
    if not isinstance(sig, dict) or not isinstance(sig.get("signature"), str) or not isinstance(sig.get("algorithm"), str):
        raise BadInput(f"{path}: needs the string fields algorithm and signature")
    return sig


def check_signature(bundle: Path, key_path: Path) -> SignatureCheck:
    """Whether `MANIFEST.sha256.sig` signs the manifest as it is now, under the verifier's key."""
    if not key_path.is_file():
        raise BadInput(f"--key {key_path}: no such file")
    sig = read_signature(bundle)
    if sig is None:
        return SignatureCheck(False, f"the bundle is not signed (no {SIGNATURE})")
    data, key_bytes = (bundle / MANIFEST).read_bytes(), key_path.read_bytes()
    algorithm, who = sig["algorithm"], f"key {sig.get('key_id', '?')}"
    if algorithm == "ed25519":
        public = _ed25519_public(key_bytes)
        if public is None:
            return SignatureCheck(False, f"signed with Ed25519 ({who}), but the key given is an HMAC secret")
        from cryptography.exceptions import InvalidSignature

        try:
            public.verify(base64.b64decode(sig["signature"], validate=True), data)
        except (InvalidSignature, binascii.Error, ValueError):
            return SignatureCheck(False, f"the Ed25519 signature ({who}) does not match the manifest under the key given")
        return SignatureCheck(True, f"signed with Ed25519 by the key given ({who})")
    if algorithm == "hmac-sha256":
        if b"PRIVATE KEY" in key_bytes or b"PUBLIC KEY" in key_bytes:
            return SignatureCheck(False, f"signed with HMAC-SHA256 ({who}), but the key given is a PEM key")
        expected = hmac.new(key_bytes, data, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig["signature"], expected):
            return SignatureCheck(False, f"the HMAC-SHA256 signature ({who}) does not match the manifest under the key given")
        return SignatureCheck(True, f"signed with HMAC-SHA256 by the key given ({who})")
    return SignatureCheck(False, f"unknown signature algorithm {algorithm!r} (ed25519 or hmac-sha256)")
