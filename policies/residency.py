"""Residency: data and infrastructure stay in the stack's residency zone."""

from __future__ import annotations

from typing import Any

from ruleutil import (
    AWS_PROVIDER, CRITICAL, Stack, UnknownValueError, arn_region, as_list, dig, region_of, resource_policy,
    resource_region, stack_policy,
)

_REGIONS_SCHEMA = {
    "allowedRegions": {
        "type": "array", "items": {"type": "string"},
        "description": "AWS regions inside the stack's residency zone (set per stack in policies/config/<stack>.json)",
    },
    "regionExceptions": {
        "type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}, "default": {},
        "description": "region -> resource types that may live there although it is outside the zone "
                       "(e.g. Route 53 health-check alarms, published only in us-east-1)",
    },
}


def check_region_allowed(type_: str, props: Any, config: dict, provider_props: Any) -> list[str]:
    """Every AWS provider and every AWS resource sits in an allowed region (or a narrow exception)."""
    allowed = set(config.get("allowedRegions") or [])
    exceptions = {r: set(ts) for r, ts in (config.get("regionExceptions") or {}).items()}
    if not allowed:
        return ["allowedRegions is not configured for this stack: set it in policies/config/<stack>.json"]
    what = "AWS provider" if type_ == AWS_PROVIDER else type_
    try:
        region = dig(props, "region") if type_ == AWS_PROVIDER else region_of(props, provider_props)
    except UnknownValueError:
        return [f"{what} region must be known at preview to prove residency (it is computed)"]
    if region is None:
        return [f"{what} must be placed in a region explicitly (a regional provider or `region`): the default region cannot be checked"]
    if region in allowed:
        return []
    if type_ == AWS_PROVIDER and region in exceptions:
        return []  # the provider may exist; what it creates is checked type by type
    if type_ in exceptions.get(region, ()):
        return []
    return [f"{what} must be in one of the allowed regions ({', '.join(sorted(allowed))}), not {region}"]


region_allowed = resource_policy(
    "aws-resource-region-allowed",
    what="Checks that every AWS provider and AWS resource is in one of the stack's allowed regions (a per-resource `region` wins over the provider's)",
    why="Tenant data and the infrastructure that processes it must stay inside the residency zone the stack serves (contractual and legal data residency).",
    types=["aws:*", AWS_PROVIDER],
    check=check_region_allowed,
    severity=CRITICAL,
    config=_REGIONS_SCHEMA,
    required=["allowedRegions"],
    remediation="Create the resource through the regional provider of an allowed region (or set `region` to one). "
                "If AWS only offers the service in a region outside the zone, add that region and the exact resource types to "
                "`regionExceptions` in policies/config/<stack>.json, with security's approval.",
    tags=["residency"],
)

S3_BUCKET = "aws:s3/bucket:Bucket"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_VAULT = "aws:backup/vault:Vault"


def _destination_regions(stack: Stack, resource: Any, prop: str, target_type: str, literal: Any) -> list[str | None]:
    """Regions of a destination: from the linked resource(s) in this stack, else from an ARN."""
    linked = stack.linked(resource, prop, target_type)
    if linked:
        return [resource_region(r) for r in linked]
    return [arn_region(literal)]


def check_replication_destinations(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    """S3 replication and AWS Backup copy destinations are in allowed regions."""
    allowed = set(config.get("allowedRegions") or [])
    if not allowed:
        return [(None, "allowedRegions is not configured for this stack: set it in policies/config/<stack>.json")]
    stack = Stack(resources)
    out: list[tuple[str | None, str]] = []

    def judge(resource: Any, regions: list[str | None], what: str) -> None:
        for region in regions:
            if region is None:
                out.append((resource.urn, f"{what} must go to a destination this stack manages in an allowed region "
                                          f"({', '.join(sorted(allowed))}); its region cannot be verified"))
            elif region not in allowed:
                out.append((resource.urn, f"{what} must go to an allowed region ({', '.join(sorted(allowed))}), not {region}"))

    replications = [(r, "rules", dig(r.props, "rules")) for r in stack.of(S3_REPLICATION)]
    replications += [(b, "replicationConfiguration", dig(b.props, "replicationConfiguration", "rules")) for b in stack.of(S3_BUCKET)]
    for resource, prop, rules in replications:
        for rule in as_list(rules):
            if str(dig(rule, "status", default="Enabled")).lower() == "disabled":
                continue
            for dest in as_list(dig(rule, "destination")) + as_list(dig(rule, "destinations")):
                judge(resource, _destination_regions(stack, resource, prop, S3_BUCKET, dig(dest, "bucket")), "S3 replication")
    for plan in stack.of(BACKUP_PLAN):
        for rule in as_list(dig(plan.props, "rules")):
            for copy in as_list(dig(rule, "copyActions")):
                judge(plan, _destination_regions(stack, plan, "rules", BACKUP_VAULT, dig(copy, "destinationVaultArn")), "Backup copy")
    return out


replication_destination_allowed = stack_policy(
    "aws-replication-destination-allowed",
    what="Checks that S3 replication rules and AWS Backup copy actions send data only to buckets and vaults in the stack's allowed regions",
    why="Replicas and backup copies are tenant data too: a copy outside the zone breaks residency as surely as the original would.",
    check=check_replication_destinations,
    severity=CRITICAL,
    config=_REGIONS_SCHEMA,
    required=["allowedRegions"],
    remediation="Replicate or copy to a bucket / vault created in this stack through an allowed region's provider "
                "(the dr region of the pair), and reference it by its output (`bucket.arn`, `vault.arn`), not a literal ARN.",
    tags=["residency"],
)

POLICIES = [region_allowed, replication_destination_allowed]
