"""The provenance record a rollout leaves in an evidence bundle, and the bundle's signature.

`<bundle>/rollout/<version>-<time>.json` (format in docs/rollout.md): what was rolled out (version,
digest), against which plan (the rollout plan's hash; the stack plan's hash when the bundle holds
`plan.json`), every step (weight, window, the canary's and stable's results, the decision), who or
what ran it, and the outcome. The bundle's `MANIFEST.sha256` is rewritten to cover it.

Signing, when the operator configures a key (`--signing-key PATH` or `$MERIDIAN_SIGNING_KEY`):
an Ed25519 private key in PEM (needs `cryptography`) signs with Ed25519, anything else is an
HMAC-SHA256 secret. The signature covers `MANIFEST.sha256`'s bytes (which cover every file) and
goes in `MANIFEST.sha256.sig` (JSON: algorithm, key id, signature), beside the manifest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path

from meridian.errors import BadInput
from meridian.evidence.manifest import MANIFEST, SIGNATURE, sha256_of, verify, write_manifest

SIGNING_KEY_ENV = "MERIDIAN_SIGNING_KEY"


def signing_key_path(option: Path | None) -> Path | None:
    path = option or (Path(os.environ[SIGNING_KEY_ENV]) if os.environ.get(SIGNING_KEY_ENV) else None)
    if path is not None and not path.is_file():
        raise BadInput(f"signing key {path} not found (from {'--signing-key' if option else '$' + SIGNING_KEY_ENV})")
    return path


def _ed25519(key_bytes: bytes):
    if b"PRIVATE KEY" not in key_bytes:
        return None
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        raise BadInput("the signing key is a PEM private key, but `cryptography` is not installed to use it") from None
    try:
        key = load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"the signing key is not a usable PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput("the signing key must be an Ed25519 private key (or any other file: an HMAC secret)")
    return key


def sign(bundle: Path, key_path: Path) -> dict:
    data = (bundle / MANIFEST).read_bytes()
    key_bytes = key_path.read_bytes()
    key = _ed25519(key_bytes)
    if key is not None:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        sig = {
            "algorithm": "ed25519",
            "key_id": hashlib.sha256(public).hexdigest()[:16],
            "public_key": base64.b64encode(public).decode(),
            "signature": base64.b64encode(key.sign(data)).decode(),
        }
    else:
        if len(key_bytes.strip()) < 16:
            raise BadInput(f"the HMAC signing key {key_path} is shorter than 16 bytes")
        sig = {
            "algorithm": "hmac-sha256",
            "key_id": hashlib.sha256(key_bytes).hexdigest()[:16],
            "signature": hmac.new(key_bytes, data, hashlib.sha256).hexdigest(),
        }
    sig["signs"] = MANIFEST
    (bundle / SIGNATURE).write_text(json.dumps(sig, indent=1) + "\n")
    return sig


def verify_signature(bundle: Path, key_path: Path) -> bool:
    """True when `MANIFEST.sha256.sig` is a valid signature of the manifest under this key."""
    sig = json.loads((bundle / SIGNATURE).read_text())
    data = (bundle / MANIFEST).read_bytes()
    key_bytes = key_path.read_bytes()
    key = _ed25519(key_bytes)
    if sig.get("algorithm") == "ed25519" and key is not None:
        from cryptography.exceptions import InvalidSignature

        try:
            key.public_key().verify(base64.b64decode(sig["signature"]), data)
            return True
        except InvalidSignature:
            return False
    if sig.get("algorithm") == "hmac-sha256" and key is None:
        return hmac.compare_digest(sig["signature"], hmac.new(key_bytes, data, hashlib.sha256).hexdigest())
    return False


def write_record(bundle: Path, record: dict, *, key_path: Path | None) -> Path:
    """Add the record to the bundle (a new directory, or an existing bundle whose manifest still
    verifies), rewrite the manifest, sign it when a key is configured."""
    bundle = bundle.resolve()
    if (bundle / MANIFEST).exists():
        check = verify(bundle)
        if not check.ok:
            raise BadInput(f"evidence bundle {bundle} does not verify, refusing to add to it: {'; '.join(check.problems())}")
    elif bundle.exists() and any(bundle.iterdir()):
        raise BadInput(f"--evidence {bundle}: not an evidence bundle (no {MANIFEST}) and not empty")
    plan = bundle / "plan.json"
    if plan.is_file():
        record = {**record, "stack_plan_sha256": sha256_of(plan)}
    stamp = record["finished_at"].replace(":", "").replace("-", "").split(".")[0]
    path = bundle / "rollout" / f"{record['version']}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    write_manifest(bundle)
    if key_path is not None:
        sign(bundle, key_path)
    else:
        (bundle / SIGNATURE).unlink(missing_ok=True)  # a stale signature would not match the new manifest
    return path
