"""Residency: data and infrastructure stay in the stack's residency zone, and so does every copy
of the data (replicas, replication destinations, backup and snapshot copies), each judged from
its own destination."""

from __future__ import annotations

from typing import Any

from destinations import AWS_NATIVE_PROVIDER, s3_bucket_region
from ruleutil import (
    AWS_PROVIDER,
    BACKUP_PLAN,
    CRITICAL,
    HIGH,
    KMS_REPLICA_KEY,
    RDS_CLUSTER,
    RDS_INSTANCE,
    S3_BUCKETS,
    UNKNOWN,
    Stack,
    UnknownValueError,
    Unverifiable,
    arn_region,
    as_list,
    dig,
    judge_each,
    peek,
    region_of,
    resource_policy,
    resource_region,
    stack_policy,
    unknown,
)

_REGIONS_SCHEMA = {
    "allowedRegions": {
        "type": "array",
        "items": {"type": "string"},
        "description": "AWS regions inside the stack's residency zone (generated from the stack config: `meridian policy --write-config`)",
    },
}
_EXCEPTIONS_SCHEMA = {
    "regionExceptions": {
        "type": "array",
        "default": [],
        "items": {"type": "object"},
        "description": "narrow exceptions: {region, component, types, why}: resources of `types` created inside the component "
        "type `component` may sit in `region` although it is outside the zone",
    },
}


def _excepted(type_: str, urn: str, region: str, exceptions: list[dict]) -> bool:
    """An exception covers a resource of one of its types whose URN shows it inside its component."""
    type_chain = urn.split("::")[2] if urn.count("::") >= 3 else ""
    return any(
        e.get("region") == region and type_ in e.get("types", []) and f"{e.get('component')}$" in type_chain for e in exceptions
    )


def check_region_allowed(type_: str, props: Any, config: dict, provider_props: Any, urn: str = "") -> list[str]:
    """Every AWS provider and every AWS resource sits in an allowed region (or a narrow exception)."""
    allowed = set(config.get("allowedRegions") or [])
    exceptions = list(config.get("regionExceptions") or [])
    if not allowed:
        return ["allowedRegions is not configured for this stack: run `meridian policy --write-config`"]
    provider = type_ in (AWS_PROVIDER, AWS_NATIVE_PROVIDER)
    what = f"{type_.rsplit(':', 1)[-1]} provider" if provider else type_
    try:
        region = dig(props, "region") if provider else region_of(props, provider_props)
    except UnknownValueError:
        return [f"{what} region must be known at preview to prove residency (it is computed)"]
    if region is None:
        return [
            f"{what} must be placed in a region explicitly (a regional provider or `region`): the default region cannot be checked"
        ]
    if region in allowed:
        return []
    if provider and any(e.get("region") == region for e in exceptions):
        return []  # the provider may exist; what it creates is checked type by type, component by component
    if _excepted(type_, urn, region, exceptions):
        return []
    return [f"{what} must be in one of the allowed regions ({', '.join(sorted(allowed))}), not {region}"]


check_region_allowed.wants_urn = True  # type: ignore[attr-defined]

region_allowed = resource_policy(
    "aws-resource-region-allowed",
    what="Checks that every AWS and AWS Cloud Control (`aws-native`) provider and resource is in one of the stack's allowed regions (a per-resource `region` wins over the provider's), except resources of the listed types inside the listed component in an exception region (the Route 53 failover alarms in us-east-1); a region computed at preview fails",
    why="Tenant data and the infrastructure that processes it must stay inside the residency zone the stack serves (contractual and legal data residency).",
    types=["aws:*", "aws-native:*", AWS_PROVIDER, AWS_NATIVE_PROVIDER],
    check=check_region_allowed,
    severity=CRITICAL,
    config={**_REGIONS_SCHEMA, **_EXCEPTIONS_SCHEMA},
    required=["allowedRegions"],
    remediation="Create the resource through the regional provider of an allowed region (or set `region` to one). "
    "Exceptions are generated from the stack config (`meridian policy --write-config`); a new one needs security's approval.",
    limits="An exception trusts the component type in the URN (`meridian:failover:Failover`): review any new component that takes that type. Resources made outside Pulumi (load balancers by the AWS Load Balancer Controller, volumes by the EBS CSI driver) are not in the stack; they follow their cluster's region.",
    tags=["residency"],
)

SNS_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
# Protocols whose endpoint is an AWS resource ARN (it must sit in the zone) and those outside AWS.
ARN_PROTOCOLS = ("sqs", "lambda", "firehose", "application")
OUTSIDE_AWS_PROTOCOLS = ("email", "email-json", "https")


def check_subscription_endpoint(type_: str, props: Any, config: dict, _provider_props: Any) -> list[str]:
    """An alert subscription delivers inside the zone (an ARN endpoint) or over TLS outside AWS."""
    allowed = set(config.get("allowedRegions") or [])
    if not allowed:
        return ["allowedRegions is not configured for this stack: run `meridian policy --write-config`"]
    protocol, endpoint = peek(props, "protocol"), peek(props, "endpoint")
    if protocol is UNKNOWN or endpoint is UNKNOWN:
        return [Unverifiable.at("protocol" if protocol is UNKNOWN else "endpoint", "SNS subscription")]
    permitted = set(config.get("allowedProtocols") or [*ARN_PROTOCOLS, *OUTSIDE_AWS_PROTOCOLS])
    if protocol not in permitted:
        why = " (cleartext)" if protocol == "http" else ""
        return [f"SNS subscription protocol must be one of {', '.join(sorted(permitted))}, not {protocol}{why}"]
    if protocol in ARN_PROTOCOLS:
        region = arn_region(endpoint)
        if region is None:
            return [f"SNS {protocol} subscription endpoint must be an ARN naming its region, not {endpoint!r}"]
        if region not in allowed:
            return [f"SNS {protocol} subscription must deliver to an allowed region ({', '.join(sorted(allowed))}), not {region}"]
    return []


subscription_endpoint_allowed = resource_policy(
    "sns-subscription-endpoint-in-zone",
    what="Checks that every SNS subscription delivers to an AWS resource (SQS queue, Lambda function, Firehose stream, "
    "application) in one of the stack's allowed regions, judged from the endpoint ARN's own region, or to an endpoint "
    "outside AWS over email or HTTPS only (never cleartext HTTP)",
    why="Alert messages leave the topic for the endpoint: an endpoint resource in another region moves data out of the "
    "residency zone even when the topic itself is inside it (or is the us-east-1 failover-alarm topic, excepted by region).",
    types=[SNS_SUBSCRIPTION],
    check=check_subscription_endpoint,
    severity=HIGH,
    config={
        **_REGIONS_SCHEMA,
        "allowedProtocols": {
            "type": "array",
            "items": {"type": "string"},
            "default": [*ARN_PROTOCOLS, *OUTSIDE_AWS_PROTOCOLS],
            "description": "subscription protocols allowed at all",
        },
    },
    required=["allowedRegions"],
    remediation="Subscribe a queue or function created in an allowed region (`meridian:alerts.subscriptions`: the config "
    "parser refuses others), or an email address / HTTPS URL.",
    limits="What an email or HTTPS recipient does with the message is outside AWS and outside this rule; an ARN in "
    "another account is judged by its region only.",
    tags=["residency"],
)

S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
DYNAMO_TABLE = "aws:dynamodb/table:Table"
DYNAMO_REPLICA = "aws:dynamodb/tableReplica:TableReplica"
SECRET = "aws:secretsmanager/secret:Secret"
ECR_REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
SNAPSHOT_COPIES = ("aws:rds/snapshotCopy:SnapshotCopy", "aws:rds/clusterSnapshotCopy:ClusterSnapshotCopy")


def _bucket_region(stack: Stack, prop: str, arn: Any) -> str | None:
    """The destination bucket's own region: the stack bucket the ARN names (destinations.named_bucket:
    a link alone proves nothing, `<dr-bucket>-archive` is built from the dr bucket's ARN too);
    None when it cannot be told."""
    if arn is UNKNOWN:
        raise unknown(prop, "destination", "bucket")
    return s3_bucket_region(stack, str(arn))


def check_replication_destinations(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    """Each copy destination in an allowed region, judged from the destination itself."""
    allowed = set(config.get("allowedRegions") or [])
    if not allowed:
        return [(None, "allowedRegions is not configured for this stack: run `meridian policy --write-config`")]
    stack = Stack(resources)

    def verdict(resource: Any, region: Any, what: str) -> list[tuple[str | None, str]]:
        if region is UNKNOWN:
            return [(resource.urn, Unverifiable.at("region", what))]
        if region is None:
            return [
                (
                    resource.urn,
                    f"{what} must go to a destination this stack manages in an allowed region "
                    f"({', '.join(sorted(allowed))}); its region cannot be verified",
                )
            ]
        if region not in allowed:
            return [(resource.urn, f"{what} must go to an allowed region ({', '.join(sorted(allowed))}), not {region}")]
        return []

    def s3(resource: Any, prop: str, rules: Any) -> list[tuple[str | None, str]]:
        out = []
        enabled = [r for r in as_list(rules) if str(dig(r, "status", default="Enabled")).lower() != "disabled"]
        dests = [d for r in enabled for d in as_list(dig(r, "destination")) + as_list(dig(r, "destinations"))]
        arns = {dig(d, "bucket") for d in dests}
        for arn in sorted(arns, key=str):
            out += verdict(resource, _bucket_region(stack, prop, arn), f"S3 replication to {arn}")
        return out

    def judge_replication(r: Any) -> list[tuple[str | None, str]]:
        return s3(r, "rules", dig(r.props, "rules"))

    def judge_bucket(b: Any) -> list[tuple[str | None, str]]:
        return s3(b, "replicationConfiguration", dig(b.props, "replicationConfiguration", "rules"))

    def judge_plan(plan: Any) -> list[tuple[str | None, str]]:
        # each copy action on its own: its destination vault ARN carries the region (the rule's local target vouches for nothing)
        out = []
        for i, rule in enumerate(as_list(dig(plan.props, "rules"))):
            for copy in as_list(dig(rule, "copyActions")):
                arn = dig(copy, "destinationVaultArn")
                out += verdict(plan, arn_region(arn), f"Backup rule {dig(rule, 'ruleName', default=i)} copy to {arn}")
        return out

    def judge_table(t: Any) -> list[tuple[str | None, str]]:
        return [
            f for rep in as_list(dig(t.props, "replicas")) for f in verdict(t, dig(rep, "regionName"), "DynamoDB table replica")
        ]

    def judge_table_replica(t: Any) -> list[tuple[str | None, str]]:
        return verdict(t, resource_region(t), "DynamoDB table replica")

    def judge_secret(s: Any) -> list[tuple[str | None, str]]:
        return [f for rep in as_list(dig(s.props, "replicas")) for f in verdict(s, dig(rep, "region"), "Secrets Manager replica")]

    def judge_ecr(e: Any) -> list[tuple[str | None, str]]:
        return [
            f
            for rule in as_list(dig(e.props, "replicationConfiguration", "rules"))
            for dest in as_list(dig(rule, "destinations"))
            for f in verdict(e, dig(dest, "region"), "ECR replication")
        ]

    def judge_snapshot_copy(c: Any) -> list[tuple[str | None, str]]:
        dest = dig(c.props, "destinationRegion")
        return verdict(c, dest, "RDS snapshot copy") if dest is not None else []

    def judge_replica_key(k: Any) -> list[tuple[str | None, str]]:
        return verdict(k, resource_region(k), "KMS replica key (a copy of its primary's key material)")

    def judge_replica_source(db: Any) -> list[tuple[str | None, str]]:
        source = dig(db.props, "replicationSourceIdentifier" if db.resource_type == RDS_CLUSTER else "replicateSourceDb")
        linked = stack.linked(db, "replicationSourceIdentifier" if db.resource_type == RDS_CLUSTER else "replicateSourceDb")
        if source is None:
            return []
        region = resource_region(linked[0]) if linked else arn_region(source)
        if region is None and not str(source).startswith("arn:"):
            return []  # an identifier without ARN names a database in the replica's own region
        return verdict(db, region, "Database replica source")

    return (
        judge_each(stack.of(S3_REPLICATION), judge_replication)
        + judge_each(stack.of(*S3_BUCKETS), judge_bucket)
        + judge_each(stack.of(BACKUP_PLAN), judge_plan)
        + judge_each(stack.of(DYNAMO_TABLE), judge_table)
        + judge_each(stack.of(DYNAMO_REPLICA), judge_table_replica)
        + judge_each(stack.of(SECRET), judge_secret)
        + judge_each(stack.of(ECR_REPLICATION), judge_ecr)
        + judge_each(stack.of(*SNAPSHOT_COPIES), judge_snapshot_copy)
        + judge_each(stack.of(RDS_CLUSTER, RDS_INSTANCE), judge_replica_source)
        + judge_each(stack.of(KMS_REPLICA_KEY), judge_replica_key)
    )


replication_destination_allowed = stack_policy(
    "aws-replication-destination-allowed",
    what="Checks that every copy of data goes to an allowed region, judged from each destination itself: S3 replication rules (the destination bucket's own region), each AWS Backup copy action (its vault ARN), DynamoDB and Secrets Manager replicas, KMS replica keys (their own region: the primary's key material), ECR replication, RDS snapshot copies, and the source of Aurora / RDS replicas",
    why="Replicas and backup copies are tenant data too: a copy outside the zone breaks residency as surely as the original would.",
    reads=[
        S3_REPLICATION,
        *S3_BUCKETS,
        BACKUP_PLAN,
        DYNAMO_TABLE,
        DYNAMO_REPLICA,
        SECRET,
        ECR_REPLICATION,
        *SNAPSHOT_COPIES,
        RDS_CLUSTER,
        RDS_INSTANCE,
        KMS_REPLICA_KEY,
    ],
    check=check_replication_destinations,
    severity=CRITICAL,
    config=_REGIONS_SCHEMA,
    required=["allowedRegions"],
    remediation="Replicate or copy to a bucket / vault created in this stack through an allowed region's provider "
    "(the dr region of the pair), and reference it by its output (`bucket.arn`, `vault.arn`), not a literal ARN.",
    limits="An S3 destination named only by ARN (S3 ARNs carry no region) cannot be placed and fails; copies AWS makes on its own (cross-region snapshot copies by RDS automation outside the stack) are not visible.",
    tags=["residency"],
)

POLICIES = [region_allowed, replication_destination_allowed, subscription_endpoint_allowed]
