"""Residency attestation, derived from a plan: where every resource lives, where every copy of
data goes (S3 replication, AWS Backup copies, database replicas, replica keys), each held against
the stack's zone, together with the residency rules' own verdicts from the policy report.

Destinations are resolved from the plan alone: an ARN that names its region (Backup vault, KMS
key, RDS) gives it; an S3 bucket ARN names no region, so it is matched to the bucket resource the
replication was built from (one of its dependencies), by explicit name or Pulumi's auto-name
(`<logical name>-<7 hex>`). A destination that cannot be resolved fails the attestation: an
unverifiable copy is not a compliant one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

RESIDENCY_RULES = ("aws-resource-region-allowed", "aws-replication-destination-allowed")
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_VAULT = "aws:backup/vault:Vault"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
GLOBAL = "global"
_AUTONAME = re.compile(r"^(?P<logical>.+)-[0-9a-f]{7}$")


@dataclass(frozen=True)
class Destination:
    kind: str  # s3-replication | s3-replica-key | backup-copy | database-member | database-replica
    source: str  # URN of the resource that sends the data
    target: str  # ARN / identifier as written in the plan
    region: str | None
    resolved_by: str  # how the region was found
    in_zone: bool


def arn_region(arn: Any) -> str | None:
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


class _Index:
    def __init__(self, resources: Iterable[Mapping[str, Any]]):
        self.resources = [r for r in resources]
        self.by_urn = {r["urn"]: r for r in self.resources}

    def of(self, type_: str) -> list[Mapping[str, Any]]:
        return [r for r in self.resources if r["type"] == type_]

    def bucket_for(self, source: Mapping[str, Any], arn: Any) -> Mapping[str, Any] | None:
        """The bucket (among `source`'s dependencies) whose physical name is in `arn`."""
        if not isinstance(arn, str) or not arn.startswith("arn:aws:s3:::"):
            return None
        name = arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        logical = m.group("logical") if (m := _AUTONAME.match(name)) else None
        for urn in source.get("dependencies") or []:
            dep = self.by_urn.get(urn)
            if dep is None or dep["type"] != S3_BUCKET:
                continue
            explicit = (dep.get("inputs") or {}).get("bucket")
            if explicit == name or (explicit is None and dep["name"] == logical):
                return dep
        return None


def destinations(resources: Iterable[Mapping[str, Any]], allowed: set[str]) -> list[Destination]:
    index = _Index(resources)
    out: list[Destination] = []

    def add(kind: str, source: Mapping[str, Any], target: Any, region: str | None, how: str) -> None:
        out.append(Destination(kind, source["urn"], str(target), region, how, region in allowed))

    replications = [(r, (r.get("inputs") or {}).get("rules")) for r in index.of(S3_REPLICATION)]
    replications += [
        (b, ((b.get("inputs") or {}).get("replicationConfiguration") or {}).get("rules")) for b in index.of(S3_BUCKET)
    ]
    for source, rules in replications:
        for rule in _as_list(rules):
            if str(rule.get("status", "Enabled")).lower() == "disabled":
                continue
            for dest in _as_list(rule.get("destination")) + _as_list(rule.get("destinations")):
                bucket = index.bucket_for(source, dest.get("bucket"))
                add(
                    "s3-replication",
                    source,
                    dest.get("bucket"),
                    bucket["region"] if bucket else None,
                    f"bucket resource {bucket['name']}" if bucket else "unresolved: no bucket of this stack matches",
                )
                key = (dest.get("encryptionConfiguration") or {}).get("replicaKmsKeyId")
                if key is not None:
                    add("s3-replica-key", source, key, arn_region(key), "key ARN")
    for plan in index.of(BACKUP_PLAN):
        for rule in _as_list((plan.get("inputs") or {}).get("rules")):
            for copy in _as_list(rule.get("copyActions")):
                arn = copy.get("destinationVaultArn")
                add("backup-copy", plan, arn, arn_region(arn), "vault ARN" if arn_region(arn) else "unresolved: not an ARN")
    for cluster in index.of(RDS_CLUSTER):
        if (cluster.get("inputs") or {}).get("globalClusterIdentifier"):
            add("database-member", cluster, cluster["name"], cluster.get("region"), "global cluster member's provider")
    for instance in index.of(RDS_INSTANCE):
        if (instance.get("inputs") or {}).get("replicateSourceDb"):
            add("database-replica", instance, instance["name"], instance.get("region"), "replica's provider")
    return out


def excepted(resource: Mapping[str, Any], exceptions: Iterable[Mapping[str, Any]]) -> bool:
    """The policy pack's narrow exception, judged the same way: a resource of one of the listed
    types, in the listed region, whose URN shows it inside the listed component type."""
    urn = str(resource.get("urn", ""))
    type_chain = urn.split("::")[2] if urn.count("::") >= 3 else ""
    return any(
        e.get("region") == resource.get("region")
        and resource.get("type") in e.get("types", [])
        and f"{e.get('component')}$" in type_chain
        for e in exceptions
    )


def attest(
    plan: Mapping[str, Any], allowed_regions: Iterable[str], exceptions: Iterable[Mapping[str, Any]], zone: str
) -> dict[str, Any]:
    """The attestation document: `verdict` is "compliant" only if every resource and every
    destination is inside the zone (or a listed exception) and the residency rules found nothing."""
    allowed = set(allowed_regions)
    exceptions = list(exceptions)
    rows, outside = [], []
    for r in plan["resources"]:
        if not r.get("custom") or not str(r["type"]).startswith("aws:"):
            continue
        region = r.get("region")
        if region in allowed:
            status = "in-zone"
        elif excepted(r, exceptions):
            status = "exception"
        else:
            status = "outside"
            outside.append(r["urn"])
        rows.append({"urn": r["urn"], "type": r["type"], "region": region, "status": status})
    dests = destinations(plan["resources"], allowed)
    policy = plan.get("policy") or {}
    verdicts = {}
    for rule in RESIDENCY_RULES:
        found = [v for v in policy.get("violations", []) if v.get("policy") == rule]
        verdicts[rule] = {
            "evaluated": bool(policy.get("evaluated")),
            "violations": found,
            "verdict": ("pass" if not found else "fail") if policy.get("evaluated") else "not evaluated",
        }
    bad_dests = [d for d in dests if not d.in_zone]
    compliant = not outside and not bad_dests and all(v["verdict"] == "pass" for v in verdicts.values())
    return {
        "stack": plan.get("stack"),
        "zone": zone,
        "allowed_regions": sorted(allowed),
        "region_exceptions": [{k: e[k] for k in ("region", "component", "types", "why") if k in e} for e in exceptions],
        "verdict": "compliant" if compliant else "not compliant",
        "resources": {"count": len(rows), "by_region": _count(rows), "outside": outside, "items": rows},
        "destinations": {
            "count": len(dests),
            "outside_or_unresolved": [asdict(d) for d in bad_dests],
            "items": [asdict(d) for d in dests],
        },
        "rules": verdicts,
    }


def _count(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        bucket = out.setdefault(str(row["region"]), {"in-zone": 0, "exception": 0, "outside": 0})
        bucket[row["status"]] += 1
    return dict(sorted(out.items()))


def markdown(doc: Mapping[str, Any]) -> str:
    lines = [
        f"# Residency attestation: stack `{doc['stack']}` (zone `{doc['zone']}`)",
        "",
        f"**Verdict: {doc['verdict']}**",
        "",
        f"Allowed regions: {', '.join(doc['allowed_regions'])}.",
    ]
    if doc["region_exceptions"]:
        lines.append(
            "Exceptions: "
            + "; ".join(f"{e['region']}: {', '.join(e['types'])} inside {e['component']}" for e in doc["region_exceptions"])
            + "."
        )
    lines += ["", "## Resources by region", "", "| region | in zone | exception | outside |", "|---|---:|---:|---:|"]
    lines += [
        f"| {region} | {c['in-zone']} | {c['exception']} | {c['outside']} |"
        for region, c in doc["resources"]["by_region"].items()
    ]
    lines += [
        "",
        "## Where copies of data go",
        "",
        "| kind | from | to | region | resolved by | in zone |",
        "|---|---|---|---|---|---|",
    ]
    for d in doc["destinations"]["items"]:
        lines.append(
            f"| {d['kind']} | `{d['source'].rsplit('::', 1)[-1]}` | `{d['target']}` | {d['region'] or '?'} | {d['resolved_by']} | {'yes' if d['in_zone'] else '**NO**'} |"
        )
    lines += ["", "## Residency rules (policy pack)", ""]
    for rule, v in doc["rules"].items():
        lines.append(f"- `{rule}`: {v['verdict']} ({len(v['violations'])} violations)")
    return "\n".join(lines) + "\n"
