"""What a role of an AWS service that acts for the platform may hold.

A role only such a service assumes (sessions.PLATFORM_SERVICES) reaches tenant data as "the platform"
(tenant-data-access allows it). That holds only while the role does what the service does for the
platform: being on the list bounds a role, it does not exempt it. Each service has the actions AWS
documents for its role (the source is beside it), minus those that run code or move data where a
runtime job says (S3 Batch Operations' Lambda invocation, FIS's SSM commands and automations); the
few documented without resource-level permissions may be on `*`. Every other Allow statement must
name resources of this stack: a bucket the plan defines (or a name pattern beginning with at least
`MIN_BUCKET_PREFIX` characters of one), or an ARN of the stack's own account in one of its regions.
AWS-managed policies pass only when AWS documents them for that service's role; any other is out of
the bound whatever it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from access.world import Doc, Principal, World

MIN_BUCKET_PREFIX = 12  # bucket names are global: a shorter pattern can name anyone's buckets
_AWS_MANAGED = "arn:aws:iam::aws:policy/"


@dataclass(frozen=True)
class Bound:
    actions: tuple[str, ...]  # what AWS documents for the service's role (IAM action patterns)
    anywhere: tuple[str, ...] = ()  # of those, the ones without resource-level permissions (may be on "*")
    managed: tuple[str, ...] = ()  # AWS-managed policies AWS documents for the role (names under arn:aws:iam::aws:policy/)
    source: str = ""


_S3_KMS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")

BOUNDS: dict[str, Bound] = {
    "s3.amazonaws.com": Bound(  # live replication
        (
            "s3:GetReplicationConfiguration",
            "s3:ListBucket",
            "s3:GetObjectVersionForReplication",
            "s3:GetObjectVersionAcl",
            "s3:GetObjectVersionTagging",
            "s3:GetObjectRetention",
            "s3:GetObjectLegalHold",
            "s3:ReplicateObject",
            "s3:ReplicateDelete",
            "s3:ReplicateTags",
            "s3:ObjectOwnerOverrideToBucketOwner",
            *_S3_KMS,
        ),
        source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html",
    ),
    "batchoperations.s3.amazonaws.com": Bound(  # copy, tag, restore, replicate; not lambda:InvokeFunction (runs code)
        (
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:GetObjectAcl",
            "s3:GetObjectVersionAcl",
            "s3:GetObjectTagging",
            "s3:GetObjectVersionTagging",
            "s3:PutObject",
            "s3:PutObjectAcl",
            "s3:PutObjectVersionAcl",
            "s3:PutObjectTagging",
            "s3:PutObjectVersionTagging",
            "s3:DeleteObjectTagging",
            "s3:DeleteObjectVersionTagging",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
            "s3:RestoreObject",
            "s3:InitiateReplication",
            "s3:GetReplicationConfiguration",
            "s3:PutInventoryConfiguration",
            "s3:GetBucketLocation",
            "s3:GetBucketVersioning",
            "s3:ListBucket",
            *_S3_KMS,
        ),
        source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html",
    ),
    "backup.amazonaws.com": Bound(
        ("kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:CreateGrant"),
        managed=(
            "service-role/AWSBackupServiceRolePolicyForBackup",
            "service-role/AWSBackupServiceRolePolicyForRestores",
            "AWSBackupServiceRolePolicyForS3Backup",
            "AWSBackupServiceRolePolicyForS3Restore",
        ),
        source="https://docs.aws.amazon.com/aws-backup/latest/devguide/iam-service-roles.html",
    ),
    "monitoring.rds.amazonaws.com": Bound(
        (
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
            "logs:GetLogEvents",
        ),
        managed=("service-role/AmazonRDSEnhancedMonitoringRole",),
        source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Monitoring.OS.Enabling.html",
    ),
    "rds.amazonaws.com": Bound(  # RDS Proxy's secret, Aurora's S3 import and export
        (
            "secretsmanager:GetSecretValue",
            "kms:Decrypt",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ),
        source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-iam-setup.html, "
        "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Integrating.Authorizing.IAM.S3CreatePolicy.html",
    ),
    "vpc-flow-logs.amazonaws.com": Bound(
        ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"),
        anywhere=("logs:DescribeLogGroups",),
        source="https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html",
    ),
    "delivery.logs.amazonaws.com": Bound(
        ("firehose:PutRecord", "firehose:PutRecordBatch"),
        source="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-and-resource-policy.html",
    ),
    "logs.amazonaws.com": Bound(  # subscription filters
        ("kinesis:PutRecord", "kinesis:PutRecords", "firehose:PutRecord", "firehose:PutRecordBatch"),
        source="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html",
    ),
    "budgets.amazonaws.com": Bound(  # budget actions that stop instances; not IAM or SCP actions (they grant) nor SSM
        ("ec2:StopInstances", "rds:StopDBInstance", "ec2:DescribeInstanceStatus", "rds:DescribeDBInstances"),
        anywhere=("ec2:DescribeInstanceStatus", "rds:DescribeDBInstances"),
        source="https://docs.aws.amazon.com/cost-management/latest/userguide/billing-permissions-ref.html",
    ),
    "fis.amazonaws.com": Bound(  # stop, reboot, fail over, cut the network; not aws:ssm:* or pod/Lambda faults (run code)
        (
            "ec2:StopInstances",
            "ec2:StartInstances",
            "ec2:RebootInstances",
            "ec2:TerminateInstances",
            "ec2:SendSpotInstanceInterruptions",
            "ec2:CreateNetworkAcl",
            "ec2:CreateNetworkAclEntry",
            "ec2:DeleteNetworkAcl",
            "ec2:ReplaceNetworkAclAssociation",
            "ec2:CreateTags",
            "ec2:Describe*",
            "ec2:GetManagedPrefixListEntries",
            "rds:FailoverDBCluster",
            "rds:RebootDBInstance",
            "rds:RebootDBCluster",
            "rds:Describe*",
            "tag:GetResources",
            "cloudwatch:DescribeAlarms",
        ),
        anywhere=(
            "ec2:Describe*",
            "ec2:GetManagedPrefixListEntries",
            "rds:Describe*",
            "tag:GetResources",
            "cloudwatch:DescribeAlarms",
        ),
        source="https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html",
    ),
    "eks.amazonaws.com": Bound(  # the cluster role; KMS for envelope encryption of Secrets
        ("kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"),
        managed=(
            "AmazonEKSClusterPolicy",
            "AmazonEKSVPCResourceController",
            "AmazonEKSServicePolicy",
            "AmazonEKSBlockStoragePolicy",
            "AmazonEKSComputePolicy",
            "AmazonEKSLoadBalancingPolicy",
            "AmazonEKSNetworkingPolicy",
        ),
        source="https://docs.aws.amazon.com/eks/latest/userguide/cluster-iam-role.html",
    ),
    "replication.ecr.amazonaws.com": Bound(
        ("ecr:ReplicateImage", "ecr:CreateRepository"),
        source="https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-settings-configure.html",
    ),
}


def _covers(pattern: str, action: str) -> bool:
    """Every action `action` (itself a pattern) names is one `pattern` names."""
    pattern, action = pattern.lower(), action.lower()
    if "*" in action or "?" in action:
        return action == pattern or (pattern.endswith("*") and "?" not in pattern and action.startswith(pattern[:-1]))
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), action) is not None


def _within(action: str, patterns: tuple[str, ...]) -> bool:
    return any(_covers(p, action) for p in patterns)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


@dataclass(frozen=True)
class Scope:
    """What "a resource of this stack" is: its account, its regions, the buckets it defines."""

    account: str
    regions: frozenset[str]
    buckets: frozenset[str]

    def outside(self, resource: str) -> str | None:
        """Why `resource` (a Resource entry) may name something the stack does not own; None if it does not."""
        if not isinstance(resource, str):
            return "not an ARN"
        text = re.split(r"\$\{", resource, maxsplit=1)[0]  # a policy variable: anything from here on
        if text == "*":
            return "every resource"
        parts = text.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn":
            return "not an ARN of this stack's resources"
        _arn, _partition, service, region, account, rest = parts
        if re.search(r"[*?]", service):
            return "a wildcard service"
        if service == "s3" and not account:
            bucket, slash, _ = rest.partition("/")
            return self._bucket(bucket if slash or text == resource else bucket + "*")
        if account != self.account:
            return f"account {account or '(any)'}, not this stack's ({self.account})"
        if region and region not in self.regions:
            return f"region {region}, not one of this stack's ({', '.join(sorted(self.regions))})"
        return None

    def _bucket(self, name: str) -> str | None:
        wild = re.search(r"[*?]", name)
        if not wild:
            return None if name in self.buckets else f"bucket {name}, which this stack does not define"
        prefix = name[: wild.start()]
        if not prefix:
            return "every bucket, of any account"
        if len(prefix) >= MIN_BUCKET_PREFIX and any(b.startswith(prefix) for b in self.buckets):
            return None
        return (
            f"any bucket named {name} (a name pattern must begin with at least {MIN_BUCKET_PREFIX} characters of a bucket "
            "this stack defines: bucket names are global)"
        )


def _services(role: Principal) -> list[str]:
    """The services of PLATFORM_SERVICES the role's trust lets assume it (sorted)."""
    doc = role.trust.document if role.trust else {}
    found = set()
    for st in _as_list(doc.get("Statement")):
        if not isinstance(st, dict) or str(st.get("Effect", "")).lower() != "allow":
            continue
        principal = st.get("Principal")
        if isinstance(principal, dict):
            found |= {s for s in _as_list(principal.get("Service")) if s in BOUNDS}
    return sorted(found)


def _statement_problems(st: dict, bound: Bound, scope: Scope) -> list[tuple[str, str]]:
    """(what, why) for each part of an Allow statement outside `bound`."""
    if "NotAction" in st:
        return [(f"NotAction {st['NotAction']}", "every action but those named, not the service's documented ones")]
    actions = [str(a) for a in _as_list(st.get("Action"))]
    out = [(a, "not an action AWS documents for this service's role") for a in actions if not _within(a, bound.actions)]
    placed = [a for a in actions if _within(a, bound.actions) and not _within(a, bound.anywhere)]
    if not placed:
        return out
    if "NotResource" in st:
        return [*out, (f"{', '.join(placed)} on NotResource {st['NotResource']}", "every resource but those named")]
    for r in _as_list(st.get("Resource")):
        why = scope.outside(r)
        if why:
            out.append((f"{', '.join(placed)} on {r}", why))
    return out


def _doc_problems(doc: Doc, bound: Bound, scope: Scope) -> list[tuple[str, str]]:
    if doc.managed and doc.managed.startswith(_AWS_MANAGED):
        if doc.managed[len(_AWS_MANAGED) :] in bound.managed:
            return []
        return [(f"AWS-managed policy {doc.managed}", "not one AWS documents for this service's role")]
    out = []
    for i, st in enumerate(_as_list(doc.document.get("Statement")), start=1):
        if not isinstance(st, dict) or str(st.get("Effect", "")).lower() != "allow":
            continue
        sid = f"statement {st['Sid']}" if st.get("Sid") else f"statement #{i}"
        out += [(f"{sid} -> {what}", why) for what, why in _statement_problems(st, bound, scope)]
    return out


def _granted_to_services(world: World, scope: Scope) -> list[tuple[str | None, str]]:
    """A resource policy (key, bucket, secret) granting a platform service's role, the stack's or its service-linked
    one, holds it to the same bound: what the resource's own policy hands the role counts as much as its own policies
    (the policy's Resource is its own resource, so only the actions are asked)."""
    from access.sessions import PLATFORM_SERVICES, linked_service

    roles = {arn: _services(p) for arn, p in world.principals.items() if not p.outsider and not p.unplaced}
    out: list[tuple[str | None, str]] = []
    for resource, docs in sorted(world.resource_policies.items()):
        for doc in docs:
            for i, st in enumerate(_as_list(doc.document.get("Statement")), start=1):
                if not isinstance(st, dict) or str(st.get("Effect", "")).lower() != "allow":
                    continue
                principal = st.get("Principal")
                for arn in _as_list(principal.get("AWS") if isinstance(principal, dict) else None):
                    linked = linked_service(str(arn), world.account)
                    services = roles.get(str(arn)) or ([linked] if linked in PLATFORM_SERVICES and linked in BOUNDS else [])
                    if not services:
                        continue
                    bound = Bound(tuple(a for s in services for a in BOUNDS[s].actions))
                    who = " and ".join(f"AWS service {s}" for s in services)
                    sid = f"statement {st['Sid']}" if st.get("Sid") else f"statement #{i}"
                    for what, why in _statement_problems({**st, "Resource": resource}, bound, scope):
                        out.append(
                            (
                                doc.urn,
                                f"A role that {who} assumes must be granted only what that service does for the platform "
                                f"(the actions AWS documents for its role): {doc.label} grants {arn} {what}, outside it ({why}). "
                                f"Path: {who} -> {arn} -> {doc.label} -> {sid}",
                            )
                        )
    return out


def service_role_problems(world: World) -> list[tuple[str | None, str]]:
    """A finding for each statement of a platform service's role outside what that service does."""
    scope = Scope(world.account, world.regions, world.buckets)
    out: list[tuple[str | None, str]] = _granted_to_services(world, scope)
    for role in world.principals.values():
        if role.outsider or role.unplaced:
            continue
        services = _services(role)
        if not services:
            continue
        bound = Bound(
            tuple(a for s in services for a in BOUNDS[s].actions),
            tuple(a for s in services for a in BOUNDS[s].anywhere),
            tuple(m for s in services for m in BOUNDS[s].managed),
        )
        who = " and ".join(f"AWS service {s}" for s in services)
        for doc in [*role.documents, *(d for _, docs in role.groups for d in docs)]:
            for what, why in _doc_problems(doc, bound, scope):
                out.append(
                    (
                        doc.urn or role.urn,
                        f"A role that {who} assumes must hold only what that service does for the platform (the actions "
                        f"AWS documents for its role, on resources of this stack): {what} is outside it ({why}). "
                        f"Path: {who} -> {role.label} -> {doc.label} -> {what}",
                    )
                )
    return out
