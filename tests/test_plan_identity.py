"""The rendered plans of the three stacks, pinned: a refactor that means to change nothing must
render every resource and output byte for byte as before.

`tests/data/plans/<stack>.json` holds one sha256 per resource (type, name, parent, provider,
inputs, dependencies, protect: everything the engine would send) and one for the outputs. A change
that is meant to move the plan rewrites them:

    MERIDIAN_UPDATE_PLAN_FINGERPRINTS=1 .venv/bin/python -m pytest tests/test_plan_identity.py

and the diff of those files shows, resource by resource, what moved.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.helpers import ROOT, STACKS

FINGERPRINTS = ROOT / "tests" / "data" / "plans"


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def fingerprints(plan: dict) -> dict:
    return {
        "resources": {r["urn"]: digest(r) for r in plan["resources"]},
        "outputs": digest(plan["outputs"]),
    }


def test_digest_sees_a_change_deep_in_the_inputs():
    resource = {"urn": "u", "inputs": {"tags": {"a": "1"}}}
    changed = {"urn": "u", "inputs": {"tags": {"a": "2"}}}
    assert digest(resource) != digest(changed)
    assert digest(resource) == digest(json.loads(json.dumps(resource)))


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_plan_is_the_pinned_one(previews, stack):
    got = fingerprints(previews[stack].plan)
    path = FINGERPRINTS / f"{stack}.json"
    if os.environ.get("MERIDIAN_UPDATE_PLAN_FINGERPRINTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(path.read_text())
    added = sorted(set(got["resources"]) - set(pinned["resources"]))
    removed = sorted(set(pinned["resources"]) - set(got["resources"]))
    changed = sorted(u for u in set(got["resources"]) & set(pinned["resources"]) if got["resources"][u] != pinned["resources"][u])
    problems = [f"added   {u}" for u in added] + [f"removed {u}" for u in removed] + [f"changed {u}" for u in changed]
    if got["outputs"] != pinned["outputs"]:
        problems.append("changed stack outputs")
    assert not problems, f"the {stack} plan differs from {path.relative_to(ROOT)} ({len(problems)}):\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_plan_does_not_name_the_checkout(previews, stack):
    """A plan that carries the checkout's path (a FileAsset by absolute path) changes with where the
    clone is: every runner would see a diff, and the pinned fingerprints would fail in CI's clone."""
    text = json.dumps(previews[stack].plan)
    assert str(ROOT) not in text, f"the {stack} plan names {ROOT}: use the file's text (StringAsset), not its path"
