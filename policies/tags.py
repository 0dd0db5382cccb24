"""Required tags on every taggable AWS resource (cost allocation, ownership, residency audits).

A resource's effective tags are what AWS will hold: its provider's `defaultTags` merged under its
own `tags` (the provider does that merge into `tags_all`), or `tagsAll` itself where the inputs
carry it. The provider's inputs come with every Analyze request, so the rule judges each resource
on its own, as the engine shows it in a real preview, where default tags are in no resource's inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ruleutil import MEDIUM, UNKNOWN, Unverifiable, effective_tags, peek, resource_policy, string_list

# pulumi-aws types whose arguments take `tags` (policies/tools/taggable_types.py regenerates it).
TAGGABLE = frozenset(json.loads((Path(__file__).parent / "aws_taggable.json").read_text()))
REQUIRED = ["meridian:stack", "meridian:zone", "meridian:region", "meridian:cost-center"]


def check_required_tags(type_: str, props: Any, config: dict, provider_props: Any) -> list[str]:
    if type_ not in TAGGABLE or type_ in set(config.get("exemptTypes", [])):
        return []
    if peek(props, "tags") is UNKNOWN:
        return [Unverifiable.at("tags", "computed tags, merged from an output")]
    tags = effective_tags(props, provider_props)
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
    what="Checks that every taggable AWS resource carries the required tags (`meridian:stack`, `meridian:zone`, `meridian:region`, `meridian:cost-center` by default) with non-empty values, counting its provider's `defaultTags` (merged under the resource's own tags, as the AWS provider does)",
    why="Budgets, cost allocation and residency audits find resources by these tags; an untagged resource is invisible to the cost caps and to incident response.",
    types=["aws:*"],
    check=check_required_tags,
    severity=MEDIUM,
    config={
        "requiredTags": string_list(REQUIRED, "tag keys every taggable resource must carry"),
        "exemptTypes": string_list([], "resource types exempt from the rule"),
    },
    remediation="Create the resource through its region's provider from `components.tagging.regional_provider` (its "
    "`default_tags` carry the stack tags); a resource on another provider must set the tags itself.",
    limits="Default tags reach only resources the provider creates: instances and volumes of a managed node group take "
    "theirs from the launch template's tag specifications, and load balancers made by a controller from its annotations.",
    tags=["tagging", "cost"],
)

POLICIES = [required_tags]
