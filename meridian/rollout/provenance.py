"""The provenance record a rollout leaves in an evidence bundle, and the bundle's signature.

`<bundle>/rollout/<version>-<time>.json` (format in docs/rollout.md): what was rolled out (version,
digest), against which plan (the rollout plan's hash; the stack plan's hash when the bundle holds
`plan.json`), every step (weight, window, the canary's and stable's results, the decision), who or
what ran it, and the outcome. The bundle's `MANIFEST.sha256` is rewritten to cover it.

Signing, when the operator configures a key (`--signing-key PATH` or `$MERIDIAN_SIGNING_KEY`):
meridian.evidence.signature; `meridian evidence verify DIR --key PATH` checks it.
"""

from __future__ import annotations

import json
from pathlib import Path

from meridian.errors import BadInput
from meridian.evidence.manifest import MANIFEST, SIGNATURE, sha256_of, verify, write_manifest
from meridian.evidence.signature import sign


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
