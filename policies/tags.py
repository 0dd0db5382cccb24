"""Required tags on every taggable AWS resource (cost allocation, ownership, residency audits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ruleutil import MEDIUM, UNKNOWN, Unverifiable, peek, resource_policy, string_list, tags_of

# pulumi-aws types whose arguments take `tags` (policies/tools/taggable_types.py regenerates it).
TAGGABLE = frozenset(json.loads((Path(__file__).parent / "aws_taggable.json").read_text()))
REQUIRED = ["meridian:stack", "meridian:zone", "meridian:region", "meridian:cost-center"]


def check_required_tags(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if type_ not in TAGGABLE or type_ in set(config.get("exemptTypes", [])):
        return []
    if peek(props, "tags") is UNKNOWN:
        return [Unverifiable.at("tags", "computed tags, merged from an output")]
    tags = tags_of(props)
    missing = [t for t in config.get("requiredTags", REQUIRED) if t not in tags]
    empty = [t for t in config.get("requiredTags", REQUIRED) if t in tags and tags[t] in ("", None)]
    out = []
    if missing:
        out.append(f"{type_.rsplit(':', 1)[-1]} must carry the tags {', '.join(missing)}")
    if empty:
        out.append(f"{type_.rsplit(':', 1)[-1]} must give the tags {', '.join(empty)} a value")
    return out


required_tags = resource_policy(
    "aws-resource-required-tags",
    what="Checks that every taggable AWS resource carries the required tags (`meridian:stack`, `meridian:zone`, `meridian:region`, `meridian:cost-center` by default) with non-empty values",
    why="Budgets, cost allocation and residency audits find resources by these tags; an untagged resource is invisible to the cost caps and to incident response.",
    types=["aws:*"],
    check=check_required_tags,
    severity=MEDIUM,
    config={
        "requiredTags": string_list(REQUIRED, "tag keys every taggable resource must carry"),
        "exemptTypes": string_list([], "resource types exempt from the rule"),
    },
    remediation="Create resources after `components.tagging.register_stack_tags` (the stack transformation tags every taggable "
    "AWS resource); set tags on resources created outside it explicitly.",
    tags=["tagging", "cost"],
)

POLICIES = [required_tags]
