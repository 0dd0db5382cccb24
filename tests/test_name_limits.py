"""`meridian/data/cfn_name_limits.json`, the name limits preflight's `names` check reads, is exactly
what the CloudFormation schemas bundled in the pinned cfn-lint say for the properties
`meridian.preflight.names.RULES` names: a preview reads the extract, so it needs no cfn-lint (the
`dev` extra has it, for this comparison). After a cfn-lint upgrade or a new rule:

    MERIDIAN_UPDATE_NAME_LIMITS=1 .venv/bin/python -m pytest tests/test_name_limits.py

and the diff of that file shows which limits moved.
"""

from __future__ import annotations

import json
import os
from importlib import metadata, resources
from pathlib import Path

import pytest

from meridian.preflight import names
from tests.helpers import ROOT

EXTRACT = ROOT / "meridian" / names.SCHEMA_LIMITS
SCHEMA_KEYS = ("maxLength", "pattern")


def extract_from_cfn_lint() -> dict:
    """The extract as it would be written now, from the installed cfn-lint's us-east-1 schemas."""
    schemas = Path(str(resources.files("cfnlint"))) / "data" / "schemas"
    digests = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    types: dict[str, dict[str, dict]] = {}
    for rule in names.RULES.values():
        schema = json.loads((schemas / "resources" / f"{digests[rule.cfn_type]}.json").read_text())
        # BudgetName is nested (Budget.BudgetName): no top-level limit, as before; the rule's documented one applies
        prop = schema["properties"].get(rule.cfn_property, {})
        types.setdefault(rule.cfn_type, {})[rule.cfn_property] = {k: prop[k] for k in SCHEMA_KEYS if k in prop}
    return {
        "source": f"CloudFormation resource schemas (us-east-1) bundled in cfn-lint {metadata.version('cfn-lint')}: "
        "maxLength and pattern of the properties meridian.preflight.names.RULES names; written by tests/test_name_limits.py",
        "types": {t: dict(sorted(props.items())) for t, props in sorted(types.items())},
    }


def test_the_extract_is_what_the_pinned_cfn_lint_says():
    pinned = next(
        line.split("==")[1].strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("cfn-lint==")
    )
    assert metadata.version("cfn-lint") == pinned, "compare against the pinned cfn-lint (constraints.txt)"
    got = extract_from_cfn_lint()
    if os.environ.get("MERIDIAN_UPDATE_NAME_LIMITS") == "1":
        EXTRACT.write_text(json.dumps(got, indent=1) + "\n")
    assert json.loads(EXTRACT.read_text()) == got, (
        f"{EXTRACT.relative_to(ROOT)} is stale: MERIDIAN_UPDATE_NAME_LIMITS=1 (docstring)"
    )


def test_the_extract_carries_the_schema_limits_the_check_enforces():
    """Spot checks against AWS's documented limits, so the extract cannot be emptied unnoticed."""
    role = names.RULES["aws:iam/role:Role"]
    bucket = names.RULES["aws:s3/bucket:Bucket"]
    assert names.limits(role) == (64, r"^[\w+=,.@-]+$")
    assert names.limits(bucket)[0] == 63
    problems = names.check_name(bucket, "urn:b", "b", {"bucket": "x" * 64})
    assert [p.message for p in problems] == ["BucketName is 64 characters (set by the program), over AWS's 63"]


def test_a_rule_missing_from_the_extract_is_an_error_not_a_pass():
    rule = names.NameRule("AWS::Made::Up", "Name", "name")
    with pytest.raises(KeyError):
        names.limits(rule)
