"""Document-size limits: what AWS refuses at `up` for being too large, measured on the plan.

Each limit is one row of `LIMITS` with the AWS page that states it. The SDK and the provider check
none of them: a policy that outgrows its limit passes preview and stops `pulumi up` (finding 7 of
issue 24: the pool's replication role listed two key ARNs per pool tenant, 10,318 characters at 60
tenants against IAM's 10,240). Measured as AWS measures: IAM counts characters without whitespace;
resource policies count bytes of the document as sent; user data counts its bytes before base64.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from meridian.engine.recorder import REDACTED
from meridian.preflight.context import CheckResult, Context, Finding
from meridian.preflight.workload import Unknown, reveal

IAM_QUOTAS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"
UNKNOWN_SHOWN = "[unknown]"


@dataclass(frozen=True)
class Limit:
    what: str
    maximum: int
    unit: str  # "characters (no whitespace)", "bytes", "rules", "tags"
    source: str


# --- the limits ----------------------------------------------------------------------------------------

ROLE_INLINE = Limit("inline policies of one IAM role, together", 10_240, "characters (no whitespace)", IAM_QUOTAS)
MANAGED_POLICY = Limit("IAM managed policy", 6_144, "characters (no whitespace)", IAM_QUOTAS)
TRUST_POLICY = Limit(
    "IAM role trust policy (default quota; adjustable in Service Quotas)", 2_048, "characters (no whitespace)", IAM_QUOTAS
)
MANAGED_PER_ROLE = Limit(
    "managed policies attached to one IAM role (default quota, adjustable to 25)", 10, "attachments", IAM_QUOTAS
)
BUCKET_POLICY = Limit(
    "S3 bucket policy", 20_480, "bytes", "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html"
)
KEY_POLICY = Limit("KMS key policy", 32_768, "bytes", "https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html")
TOPIC_POLICY = Limit(
    "SNS topic policy",
    30_720,
    "bytes",
    "https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html",
)
QUEUE_POLICY = Limit(
    "SQS queue policy",
    8_192,
    "bytes",
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-policies.html",
)
ENDPOINT_POLICY = Limit(
    "VPC endpoint policy (quota L-3248932A)",
    20_480,
    "characters",
    "https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-limits.html",
)
REPLICATION_RULES = Limit(
    "S3 replication rules of one bucket",
    1_000,
    "rules",
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-example-walkthroughs.html",
)
USER_DATA = Limit(
    "launch template user data, before base64",
    16_384,
    "bytes",
    "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html",
)
SECRET_VALUE = Limit(
    "Secrets Manager secret value",
    65_536,
    "bytes",
    "https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html",
)
K8S_SECRET = Limit(
    "Kubernetes Secret data, all keys together",
    1_048_576,
    "bytes",
    "https://kubernetes.io/docs/concepts/configuration/secret/#restriction-data-size",
)
TAGS = Limit(
    "user tags on one AWS resource (provider default tags included)",
    50,
    "tags",
    "https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html",
)
TAG_KEY = Limit("tag key", 128, "characters", TAGS.source)
TAG_VALUE = Limit("tag value", 256, "characters", TAGS.source)

LIMITS: tuple[Limit, ...] = (
    ROLE_INLINE,
    MANAGED_POLICY,
    TRUST_POLICY,
    MANAGED_PER_ROLE,
    BUCKET_POLICY,
    KEY_POLICY,
    TOPIC_POLICY,
    QUEUE_POLICY,
    ENDPOINT_POLICY,
    REPLICATION_RULES,
    USER_DATA,
    SECRET_VALUE,
    K8S_SECRET,
    TAGS,
    TAG_KEY,
    TAG_VALUE,
)

# resource type -> (input holding the document, its limit); IAM's are measured without whitespace
POLICY_DOCUMENTS: dict[str, tuple[str, Limit]] = {
    "aws:iam/policy:Policy": ("policy", MANAGED_POLICY),
    "aws:iam/role:Role": ("assumeRolePolicy", TRUST_POLICY),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy", BUCKET_POLICY),
    "aws:kms/key:Key": ("policy", KEY_POLICY),
    "aws:kms/replicaKey:ReplicaKey": ("policy", KEY_POLICY),
    "aws:sns/topic:Topic": ("policy", TOPIC_POLICY),
    "aws:sns/topicPolicy:TopicPolicy": ("policy", TOPIC_POLICY),
    "aws:sqs/queue:Queue": ("policy", QUEUE_POLICY),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy", QUEUE_POLICY),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("policy", ENDPOINT_POLICY),
}
IAM_MEASURED = {MANAGED_POLICY, TRUST_POLICY, ROLE_INLINE}
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
BUDGET_ACTION = "aws:budgets/budgetAction:BudgetAction"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
K8S_SECRET_TYPE = "kubernetes:core/v1:Secret"


# --- measuring -------------------------------------------------------------------------------------------


def iam_size(document: Any) -> int:
    """Characters as IAM counts them against its limits: without whitespace."""
    text = document if isinstance(document, str) else json.dumps(document)
    return sum(1 for c in text if not c.isspace())


def byte_size(document: Any) -> int:
    text = document if isinstance(document, str) else json.dumps(document)
    return len(text.encode())


def measure(limit: Limit, document: Any) -> int:
    return iam_size(document) if limit in IAM_MEASURED else byte_size(document)


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and UNKNOWN_SHOWN in value


def over(result: CheckResult, urn: str, limit: Limit, size: int, fix: str) -> None:
    result.checked += 1
    if size > limit.maximum:
        result.findings.append(
            Finding(urn, f"{limit.what}: {size:,} {limit.unit}, over AWS's {limit.maximum:,} ({limit.source})", fix)
        )


def unmeasurable(result: CheckResult, urn: str, what: str) -> None:
    result.findings.append(
        Finding(urn, f"{what} is unknown in the plan: its size cannot be checked", "render it from values known at preview")
    )


# --- the check -----------------------------------------------------------------------------------------------


def check_limits(ctx: Context) -> CheckResult:
    result = CheckResult(
        "limits",
        "AWS document-size limits: "
        + "; ".join(f"{limit.what} <= {limit.maximum:,} {limit.unit}" for limit in LIMITS)
        + " (sources: IAM quotas, S3 user guide, KMS PutKeyPolicy, SNS and SQS policy quotas, EC2 user data, "
        "Secrets Manager quotas, Kubernetes Secret size, tagging guide; docs/operations.md lists each page)",
    )
    _policy_documents(ctx, result)
    _role_totals(ctx, result)
    _replication_rules(ctx, result)
    _user_data(ctx, result)
    _secret_values(ctx, result)
    _k8s_secrets(ctx, result)
    _tags(ctx, result)
    return result


def _policy_documents(ctx: Context, result: CheckResult) -> None:
    for reg in ctx.plan.custom:
        spec = POLICY_DOCUMENTS.get(reg.type)
        if spec is None:
            continue
        key, limit = spec
        document = ctx.inputs[reg.urn].get(key)
        if document is None:
            continue
        if is_unknown(document):
            unmeasurable(result, reg.urn, f"{reg.name}'s {key}")
            continue
        over(
            result,
            reg.urn,
            limit,
            measure(limit, document),
            f"shrink the {key}: name resources by pattern or tag, not one by one",
        )


def _role_totals(ctx: Context, result: CheckResult) -> None:
    """Inline policies count together per role; attached managed policies count per role."""
    roles = {str(r.id): r for r in ctx.of_type("aws:iam/role:Role")} | {
        str(ctx.inputs[r.urn].get("name")): r for r in ctx.of_type("aws:iam/role:Role") if ctx.inputs[r.urn].get("name")
    }
    inline: dict[str, int] = defaultdict(int)
    holders: dict[str, list[str]] = defaultdict(list)
    unknown: set[str] = set()
    for reg in ctx.of_type("aws:iam/role:Role"):
        for policy in ctx.inputs[reg.urn].get("inlinePolicies") or []:
            inline[reg.urn] += iam_size(policy.get("policy") or "")
    for reg in ctx.of_type(ROLE_POLICY):
        inputs = ctx.inputs[reg.urn]
        role = roles.get(str(inputs.get("role")))
        owner = role.urn if role else f"role {inputs.get('role')}"
        document = inputs.get("policy")
        if document is None or is_unknown(document):
            unknown.add(owner)
            unmeasurable(result, reg.urn, f"{reg.name}'s policy")
            continue
        inline[owner] += iam_size(document)
        holders[owner].append(reg.name)
    for owner, size in sorted(inline.items()):
        over(
            result,
            owner,
            ROLE_INLINE,
            size,
            f"the role's inline policies ({', '.join(sorted(holders[owner])) or 'inlinePolicies'}) must shrink: "
            "grant by tag or pattern (e.g. aws:ResourceTag) instead of listing ARNs per tenant",
        )
    attached: dict[str, set[str]] = defaultdict(set)
    for reg in ctx.of_type(ROLE_ATTACHMENT):
        role = roles.get(str(ctx.inputs[reg.urn].get("role")))
        attached[role.urn if role else f"role {ctx.inputs[reg.urn].get('role')}"].add(reg.urn)
    # A budget action attaches its policy when its budget is exceeded: every tenant over budget at
    # once must fit next to what is attached already, or AttachRolePolicy fails for the next one.
    by_actions: dict[str, set[str]] = defaultdict(set)
    for reg in ctx.of_type(BUDGET_ACTION):
        inputs = ctx.inputs[reg.urn]
        if inputs.get("actionType") != "APPLY_IAM_POLICY":
            continue
        definition = (inputs.get("definition") or {}).get("iamActionDefinition") or {}
        for name in definition.get("roles") or []:
            role = roles.get(str(name))
            owner = role.urn if role else f"role {name}"
            attached[owner].add(str(definition.get("policyArn") or reg.urn))
            by_actions[owner].add(reg.urn)
    for owner, policies in sorted(attached.items()):
        how = (
            f"{len(by_actions[owner])} budget actions may attach their policies to it at once: enforce caps without one "
            "managed policy per tenant on a shared role (docs/tenancy-and-cost.md), or "
            if by_actions.get(owner)
            else ""
        )
        over(
            result, owner, MANAGED_PER_ROLE, len(policies), f"{how}combine the managed policies, or raise the quota (L-0DA4ABF3)"
        )


def _replication_rules(ctx: Context, result: CheckResult) -> None:
    """At most 1,000 rules, and one replication configuration per bucket (a second replaces the first)."""
    configs: dict[str, list[str]] = defaultdict(list)
    for reg in ctx.of_type(REPLICATION):
        inputs = ctx.inputs[reg.urn]
        configs[str(inputs.get("bucket"))].append(reg.urn)
        over(
            result,
            reg.urn,
            REPLICATION_RULES,
            len(inputs.get("rules") or []),
            "replicate by a shared prefix under one rule (one replica key per rule), not a rule per tenant",
        )
    for bucket, urns in sorted(configs.items()):
        if len(urns) > 1:
            result.findings.append(
                Finding(
                    urns[1],
                    f"{len(urns)} replication configurations for bucket {bucket}: S3 keeps one per bucket, each `up` overwrites the other",
                    "put every rule of the bucket in one BucketReplicationConfig",
                )
            )


def _user_data(ctx: Context, result: CheckResult) -> None:
    for reg in ctx.of_type(LAUNCH_TEMPLATE):
        encoded = ctx.inputs[reg.urn].get("userData")
        if encoded is None:
            continue
        if is_unknown(encoded):
            unmeasurable(result, reg.urn, "user data")
            continue
        try:
            raw = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            result.findings.append(
                Finding(reg.urn, "user data is not base64: EC2 refuses it", "pass base64-encoded user data (pulumi_std / base64)")
            )
            continue
        over(
            result, reg.urn, USER_DATA, len(raw), "move what the nodes need to fetch at boot into S3 or SSM, keep user data small"
        )


def _secret_values(ctx: Context, result: CheckResult) -> None:
    """Measured on the wire inputs (the plan redacts secrets); the value itself is never shown."""
    for reg in ctx.of_type(SECRET_VERSION):
        value = reveal(json_format.MessageToDict(reg.inputs)).get("secretString")
        if value is None:
            continue
        if value == REDACTED:  # a plan read back from JSON
            result.notes.append(
                f"{reg.name}: the secret value is redacted in this plan; its size is judged by its stack's preflight"
            )
            continue
        if isinstance(value, Unknown):
            unmeasurable(result, reg.urn, "the secret value")
            continue
        over(
            result,
            reg.urn,
            SECRET_VALUE,
            byte_size(value),
            "store large material in S3 under a KMS key and keep its pointer in the secret",
        )


def _k8s_secrets(ctx: Context, result: CheckResult) -> None:
    """The service's settings file (a platform's inline tenants) and a cell's tenant file grow with
    tenants; the API server refuses a Secret whose data passes 1 MiB. Measured on the wire inputs
    (`data` decoded from base64, `stringData` as is); the values are never shown."""
    for reg in ctx.of_type(K8S_SECRET_TYPE):
        doc = reveal(json_format.MessageToDict(reg.inputs))
        fields = [doc.get("data") or {}, doc.get("stringData") or {}]
        if REDACTED in fields or not all(isinstance(f, dict) for f in fields):  # a plan read back from JSON
            result.notes.append(f"{reg.name}: its data is redacted in this plan; its size is judged by its stack's preflight")
            continue
        values = [(v, True) for v in fields[0].values()] + [(v, False) for v in fields[1].values()]
        if any(isinstance(v, Unknown) for v, _ in values):
            result.notes.append(f"{reg.name}: a value unknown at preview; its size is judged by the API server at up")
            continue
        size = sum(len(base64.b64decode(str(v))) if encoded else byte_size(str(v)) for v, encoded in values)
        over(
            result,
            reg.urn,
            K8S_SECRET,
            size,
            "split it: a platform's inline tenants over to cell stacks (each its own tenant file), or a smaller cells.size",
        )


def _provider_tags(ctx: Context) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for reg in ctx.plan.registrations:
        if reg.type != "pulumi:providers:aws":
            continue
        raw = ctx.inputs[reg.urn].get("defaultTags")
        value = json.loads(raw) if isinstance(raw, str) else raw
        out[reg.urn] = dict((value or {}).get("tags") or {})
    return out


def _tags(ctx: Context, result: CheckResult) -> None:
    """The tags AWS stores on a resource: its own over the provider's default tags."""
    defaults = _provider_tags(ctx)
    for reg in ctx.plan.custom:
        if not reg.type.startswith("aws:"):
            continue
        own = ctx.inputs[reg.urn].get("tags")
        if own is None:
            continue
        tags = {**defaults.get(reg.provider_urn, {}), **own}
        over(result, reg.urn, TAGS, len(tags), "drop tags, or move descriptive ones into a single tag")
        for key, value in _long_tags(tags):
            result.findings.append(Finding(reg.urn, key, value))


def _long_tags(tags: dict[str, Any]) -> Iterable[tuple[str, str]]:
    for key, value in sorted(tags.items()):
        if len(key) > TAG_KEY.maximum:
            yield f"tag key {key[:40]}... is {len(key)} characters, over {TAG_KEY.maximum}", "shorten the tag key"
        if isinstance(value, str) and len(value) > TAG_VALUE.maximum:
            yield f"tag {key} has a value of {len(value)} characters, over {TAG_VALUE.maximum}", "shorten the tag value"
