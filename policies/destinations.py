"""Residency by destination: every path by which a resource sends data somewhere else, judged by
where the data lands (region and account), not by where the sender sits.

The sender's own region is aws-resource-region-allowed's; replication, backup copies, replicas and
snapshot copies are aws-replication-destination-allowed's. This rule judges the other paths:
EventBridge targets and global endpoints, Pipes and Scheduler targets, CloudWatch Logs subscription
filters and log destinations, VPC flow logs, Firehose delivery streams, DynamoDB Kinesis streaming
and legacy global tables, DLM cross-region copies, S3 Multi-Region Access Points, Lambda dead-letter
targets and asynchronous-invocation destinations, SNS subscriptions
(by account: their region is sns-subscription-endpoint-in-zone's) and CloudFront, whose edges serve
from everywhere. A destination is placed by its ARN (region and account), by the stack resource it
names (an S3 bucket by name, or a resource auto-named from the linked one), or not at all: a
destination that cannot be placed is a violation, one only known after apply is reported
(advisory, naming the resource and the property), never assumed in the zone. What this list does not
name, the generic pass of destinationscan.py places: every ARN, bucket name, AWS regional host, SDK
endpoint override and DNS record target in any resource's inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from destinationscan import Scan, scan_resource
from ruleutil import (
    AWS_PROVIDER,
    CRITICAL,
    S3_BUCKETS,
    UNKNOWN,
    Stack,
    Unverifiable,
    arn_region,
    as_list,
    judge_each,
    known,
    named_bucket,
    peek,
    provider_accounts,
    resource_region,
    stack_policy,
)

AWS_NATIVE_PROVIDER = "pulumi:providers:aws-native"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
EVENT_ENDPOINT = "aws:cloudwatch/eventEndpoint:EventEndpoint"
PIPE = "aws:pipes/pipe:Pipe"
SCHEDULE = "aws:scheduler/schedule:Schedule"
LOG_SUBSCRIPTION = "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter"
LOG_DESTINATION = "aws:cloudwatch/logDestination:LogDestination"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
DYNAMO_KINESIS = "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination"
DYNAMO_GLOBAL_TABLE = "aws:dynamodb/globalTable:GlobalTable"
DLM_POLICY = "aws:dlm/lifecyclePolicy:LifecyclePolicy"
MULTI_REGION_ACCESS_POINT = "aws:s3control/multiRegionAccessPoint:MultiRegionAccessPoint"
SNS_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
CLOUDFRONT = "aws:cloudfront/distribution:Distribution"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
LAMBDA_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
# copy paths whose region aws-replication-destination-allowed judges: here, their account
BACKUP_PLAN = "aws:backup/plan:Plan"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
ECR_REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"

# Firehose destinations (pulumi-aws 7 `FirehoseDeliveryStream` blocks) and the property naming where each delivers.
FIREHOSE_DESTINATIONS = {
    "extendedS3Configuration": "bucketArn",
    "redshiftConfiguration": "s3Configuration.bucketArn",
    "elasticsearchConfiguration": "domainArn",
    "opensearchConfiguration": "domainArn",
    "opensearchserverlessConfiguration": "collectionEndpoint",
    "icebergConfiguration": "catalogArn",
    "snowflakeConfiguration": "accountUrl",
    "splunkConfiguration": "hecEndpoint",
    "httpEndpointConfiguration": "url",
}
# Firehose destinations outside AWS: the data leaves AWS, and with it the zone.
OUTSIDE_AWS = ("snowflakeConfiguration", "splunkConfiguration", "httpEndpointConfiguration")

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")
_REGIONS = {
    "allowedRegions": {
        "type": "array",
        "items": {"type": "string"},
        "description": "AWS regions inside the stack's residency zone (generated from the stack config: `meridian policy --write-config`)",
    },
    "allowGlobalEdge": {
        "type": "boolean",
        "default": False,
        "description": "the zone's data may be served from CloudFront's edges in every region (only a zone whose contract allows it)",
    },
}


# --- where a destination is ---------------------------------------------------------------------


def stack_accounts(stack: Stack) -> set[str]:
    """The accounts the stack deploys into: its AWS providers' `allowedAccountIds` (a list, or JSON text as provider inputs arrive)."""
    return {a for provider in stack.of(AWS_PROVIDER, AWS_NATIVE_PROVIDER) for a in provider_accounts(provider.props)}


def arn_account(arn: Any) -> str | None:
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 4 and parts[4]:
            return parts[4]
    return None


def s3_bucket_region(stack: Stack, arn: str) -> str | None:
    """The region of the S3 bucket an `arn:aws:s3:::name` ARN names, if it is a stack bucket
    (S3 ARNs carry no region); None otherwise."""
    bucket = named_bucket(stack, arn.removeprefix("arn:aws:s3:::").split("/", 1)[0])
    return resource_region(bucket) if bucket is not None else None


class Place:
    """Where one destination lands, or why it cannot be told."""

    def __init__(self, region: str | None = None, account: str | None = None, outside: str | None = None):
        self.region, self.account, self.outside = region, account, outside


def place(stack: Stack, value: Any) -> Place:
    """A destination ARN (or endpoint) placed by its region and account."""
    if not isinstance(value, str) or not value.startswith("arn:"):
        return Place(outside=f"{value!r} is not an ARN naming its region")
    if value.startswith("arn:aws:s3:::"):
        return Place(s3_bucket_region(stack, value))
    return Place(arn_region(value), arn_account(value))


# --- the paths -----------------------------------------------------------------------------------


def _at(props: Any, path: str) -> Any:
    value = props
    for step in path.split("."):
        value = peek(value, step)
        if value is None or value is UNKNOWN:
            return value
    return value


def service_region(service_name: str) -> str | None:
    """The region a VPC endpoint service name names: `com.amazonaws.<region>.<service>`,
    `com.amazonaws.vpce.<region>.vpce-svc-...` (PrivateLink), `aws.sagemaker.<region>.notebook`."""
    return next((part for part in service_name.split(".") if _REGION.match(part)), None)


def destinations(stack: Stack, r: Any, allow_edge: bool) -> Iterator[tuple[str, Any]]:
    """(property path, destination ARN or endpoint) for each place `r` sends data; `UNKNOWN` where
    only known after apply. A CloudFront distribution yields its own finding (edges everywhere)."""
    t, p = r.resource_type, r.props
    if t == EVENT_TARGET:
        yield "arn", _at(p, "arn")
    elif t == EVENT_ENDPOINT:
        for i, bus in enumerate(as_list(known(peek(p, "eventBuses")))):
            yield f"eventBuses.{i}.eventBusArn", peek(bus, "eventBusArn") if bus is not UNKNOWN else UNKNOWN
    elif t == PIPE:
        yield "target", _at(p, "target")
    elif t == SCHEDULE:
        yield "target.arn", _at(p, "target.arn")
    elif t == LOG_SUBSCRIPTION:
        yield "destinationArn", _at(p, "destinationArn")
    elif t == LOG_DESTINATION:
        yield "targetArn", _at(p, "targetArn")
    elif t == FLOW_LOG:
        dest = _at(p, "logDestination")
        if dest is not None:
            yield "logDestination", dest
    elif t == DYNAMO_KINESIS:
        yield "streamArn", _at(p, "streamArn")
    elif t == FIREHOSE:
        for block, field in FIREHOSE_DESTINATIONS.items():
            config = peek(p, block)
            if config is None:
                continue
            if block in OUTSIDE_AWS:
                yield block, "outside AWS"
            else:
                yield f"{block}.{field}", UNKNOWN if config is UNKNOWN else _at(config, field)
    elif t == DYNAMO_GLOBAL_TABLE:
        for i, replica in enumerate(as_list(known(peek(p, "replicas")))):
            region = UNKNOWN if replica is UNKNOWN else peek(replica, "regionName")
            yield f"replicas.{i}.regionName", ("region", region)
    elif t == DLM_POLICY:
        for i, schedule in enumerate(as_list(known(peek(p, "policyDetails", "schedules")))):
            for j, rule in enumerate(as_list(peek(schedule, "crossRegionCopyRules") if schedule is not UNKNOWN else UNKNOWN)):
                target = UNKNOWN if rule is UNKNOWN else (peek(rule, "targetRegion") or peek(rule, "target"))
                yield f"policyDetails.schedules.{i}.crossRegionCopyRules.{j}", ("region", target)
        for i, action in enumerate(as_list(known(peek(p, "policyDetails", "actions")))):
            for j, copy in enumerate(as_list(peek(action, "crossRegionCopies") if action is not UNKNOWN else UNKNOWN)):
                yield (
                    f"policyDetails.actions.{i}.crossRegionCopies.{j}.target",
                    ("region", UNKNOWN if copy is UNKNOWN else peek(copy, "target")),
                )
    elif t == MULTI_REGION_ACCESS_POINT:
        for i, region in enumerate(as_list(known(peek(p, "details", "regions")))):
            bucket = UNKNOWN if region is UNKNOWN else peek(region, "bucket")
            yield f"details.regions.{i}.bucket", bucket if bucket is UNKNOWN else f"arn:aws:s3:::{bucket}"
    elif t == SNS_SUBSCRIPTION:
        endpoint = _at(p, "endpoint")
        if endpoint is UNKNOWN or (isinstance(endpoint, str) and endpoint.startswith("arn:")):
            yield "endpoint", ("account", endpoint)
    elif t == BACKUP_PLAN:
        for i, rule in enumerate(as_list(known(peek(p, "rules")))):
            for j, copy in enumerate(as_list(peek(rule, "copyActions") if rule is not UNKNOWN else UNKNOWN)):
                vault = UNKNOWN if copy is UNKNOWN else peek(copy, "destinationVaultArn")
                yield f"rules.{i}.copyActions.{j}.destinationVaultArn", ("account", vault)
    elif t in (S3_REPLICATION, *S3_BUCKETS):
        inline = "" if t == S3_REPLICATION else "replicationConfiguration."
        rules = known(peek(p, "rules") if t == S3_REPLICATION else peek(p, "replicationConfiguration", "rules"))
        # the replicas' owner: `account` on a BucketReplicationConfig, `accountId` inline on a bucket (pulumi-aws 7)
        field = "account" if t == S3_REPLICATION else "accountId"
        for i, rule in enumerate(as_list(rules)):
            for dest in as_list(peek(rule, "destination") if rule is not UNKNOWN else UNKNOWN):
                account = UNKNOWN if dest is UNKNOWN else peek(dest, field)
                if account is not None:
                    yield f"{inline}rules.{i}.destination.{field}", ("account-id", account)
    elif t == ECR_REPLICATION:
        rules = known(peek(p, "replicationConfiguration", "rules"))
        for i, rule in enumerate(as_list(rules)):
            for j, dest in enumerate(as_list(peek(rule, "destinations") if rule is not UNKNOWN else UNKNOWN)):
                registry = UNKNOWN if dest is UNKNOWN else peek(dest, "registryId")
                yield f"replicationConfiguration.rules.{i}.destinations.{j}.registryId", ("account-id", registry)
    elif t == VPC_ENDPOINT:
        # cross-region PrivateLink: `serviceRegion` (Interface endpoints), or a service name of another region
        if _at(p, "serviceRegion") is not None:
            yield "serviceRegion", ("region", _at(p, "serviceRegion"))
        name = _at(p, "serviceName")
        yield "serviceName", ("region", name if name is UNKNOWN else service_region(str(name)))
    elif t == LAMBDA_FUNCTION:
        # a dead-letter queue or topic receives the whole event of every failed asynchronous invocation
        target = _at(p, "deadLetterConfig.targetArn")
        if target is not None:
            yield "deadLetterConfig.targetArn", target
    elif t == LAMBDA_INVOKE_CONFIG:
        for outcome in ("onFailure", "onSuccess"):
            target = _at(p, f"destinationConfig.{outcome}.destination")
            if target is not None:
                yield f"destinationConfig.{outcome}.destination", target
    elif t == CLOUDFRONT and not allow_edge:
        yield "origins", ("edge", [known(o) for o in as_list(known(peek(p, "origins")))])


TYPES = (
    EVENT_TARGET,
    EVENT_ENDPOINT,
    PIPE,
    SCHEDULE,
    LOG_SUBSCRIPTION,
    LOG_DESTINATION,
    FLOW_LOG,
    FIREHOSE,
    DYNAMO_KINESIS,
    DYNAMO_GLOBAL_TABLE,
    DLM_POLICY,
    MULTI_REGION_ACCESS_POINT,
    SNS_SUBSCRIPTION,
    CLOUDFRONT,
    VPC_ENDPOINT,
    LAMBDA_FUNCTION,
    LAMBDA_INVOKE_CONFIG,
    BACKUP_PLAN,
    S3_REPLICATION,
    *S3_BUCKETS,
    ECR_REPLICATION,
)


# Top-level properties another residency rule places (aws-replication-destination-allowed,
# sns-subscription-endpoint-in-zone): the generic pass leaves them to it, so one property draws one finding.
JUDGED_ELSEWHERE = {
    S3_REPLICATION: {"rules"},
    **{t: {"replicationConfiguration"} for t in S3_BUCKETS},
    BACKUP_PLAN: {"rules"},
    ECR_REPLICATION: {"replicationConfiguration"},
    SNS_SUBSCRIPTION: {"endpoint"},
    "aws:dynamodb/table:Table": {"replicas"},
    "aws:secretsmanager/secret:Secret": {"replicas"},
    "aws:rds/cluster:Cluster": {"replicationSourceIdentifier"},
    "aws:rds/instance:Instance": {"replicateSourceDb"},
    "aws:kms/replicaKey:ReplicaKey": {"primaryKeyArn"},
    "aws:rds/snapshotCopy:SnapshotCopy": {"destinationRegion"},
    "aws:rds/clusterSnapshotCopy:ClusterSnapshotCopy": {"destinationRegion"},
}


def scanned(r: Any) -> bool:
    """The generic pass reads every resource but providers (provider-account-and-endpoints-in-zone's) and
    CloudFront distributions (refused whole above)."""
    return not r.resource_type.startswith("pulumi:") and r.resource_type != CLOUDFRONT


def check_destinations(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    allowed = set(config.get("allowedRegions") or [])
    if not allowed:
        return [(None, "allowedRegions is not configured for this stack: run `meridian policy --write-config`")]
    stack = Stack(resources)
    accounts = stack_accounts(stack)
    zone = ", ".join(sorted(allowed))

    def account_problem(r: Any, what: str, prop: str, account: str | None) -> list[tuple[str | None, str]]:
        if account is None or account == "aws" or account in accounts:
            return []
        if not accounts:
            return [
                (
                    r.urn,
                    f"{what} {prop} must name an account the stack declares (account {account}), but no AWS "
                    "provider declares `allowedAccountIds`: set it so a foreign account can be told apart",
                )
            ]
        return [
            (
                r.urn,
                f"{what} {prop} must deliver to the stack's own account ({', '.join(sorted(accounts))}), not account {account}",
            )
        ]

    def judge(r: Any) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        what = getattr(r, "original_type", r.resource_type).rsplit(":", 1)[-1]
        for prop, dest in destinations(stack, r, bool(config.get("allowGlobalEdge", False))):
            kind, value = dest if isinstance(dest, tuple) else ("arn", dest)
            if value is UNKNOWN:
                out.append((r.urn, Unverifiable.at(prop, f"{what} destination: where does the data go?")))
                continue
            if kind == "edge":
                origins = ", ".join(str(peek(o, "domainName")) for o in value if isinstance(o, dict)) or "its origins"
                out.append(
                    (
                        r.urn,
                        f"CloudFront distribution must not serve the zone's data ({origins}): its edges cache and serve "
                        f"it in every region, outside {zone} (set allowGlobalEdge only where the zone's contract allows it)",
                    )
                )
                continue
            if kind in ("account", "account-id"):
                out += account_problem(r, what, prop, arn_account(value) if kind == "account" else str(value))
                continue
            if kind == "region":
                if value is None:
                    out.append((r.urn, f"{what} {prop} must name its destination region (none given)"))
                elif value not in allowed:
                    out.append((r.urn, f"{what} {prop} must copy to an allowed region ({zone}), not {value}"))
                continue
            if value == "outside AWS":
                out.append((r.urn, f"{what} {prop} must deliver inside AWS and the zone: it sends the data outside AWS"))
                continue
            where = place(stack, value)
            if where.outside:
                out.append((r.urn, f"{what} {prop} must be an ARN in an allowed region: {where.outside}"))
            elif where.region is None:
                out.append(
                    (
                        r.urn,
                        f"{what} {prop} must deliver to a destination this stack manages in an allowed region ({zone}); "
                        f"{value} cannot be placed",
                    )
                )
            elif where.region not in allowed:
                out.append((r.urn, f"{what} {prop} must deliver to an allowed region ({zone}), not {where.region}"))
            out += account_problem(r, what, prop, where.account)
        return out

    allow_edge = bool(config.get("allowGlobalEdge", False))
    scan = Scan(stack, allowed, accounts, allow_edge)

    def judge_all(r: Any) -> list[tuple[str | None, str]]:
        skip = set(JUDGED_ELSEWHERE.get(r.resource_type, ()))
        if r.resource_type in TYPES:
            skip |= {prop for prop, _ in destinations(stack, r, allow_edge)}
        return scan_resource(scan, r, skip)

    return judge_each(stack.of(*TYPES), judge) + judge_each([r for r in stack.resources if scanned(r)], judge_all)


destination_in_zone = stack_policy(
    "aws-data-path-destination-in-zone",
    what="Checks that every path by which a resource sends data elsewhere lands in one of the stack's allowed regions and "
    "the stack's own account, judged from the destination: EventBridge targets and global-endpoint buses, Pipes and "
    "Scheduler targets, CloudWatch Logs subscription filters and log destinations, VPC flow log destinations, Firehose "
    "delivery destinations (none outside AWS), DynamoDB Kinesis streaming and legacy global-table replicas, DLM "
    "cross-region copies, S3 Multi-Region Access Point buckets, Lambda functions' dead-letter queue or topic "
    "(`deadLetterConfig.targetArn`) and event invoke configs' `onSuccess`/`onFailure` destinations, VPC endpoints' service region (`serviceRegion`, cross-region "
    "PrivateLink, and the region the `serviceName` names); the account of backup copy vaults, S3 replication "
    "destinations (`account` of a BucketReplicationConfig, `accountId` inline on a bucket), ECR replication registries and SNS subscription endpoints; and no CloudFront "
    "distribution (its edges serve from every region) unless `allowGlobalEdge`. Beyond that list, a generic pass reads every input of "
    "every resource (providers aside), ARNs and hosts in any letter case: each ARN (any partition and service) must be in an "
    "allowed region and a declared account, each S3 bucket named (an `arn:aws:s3:::` ARN, an `s3://` / `s3a://` / `s3n://` URI, an "
    "S3 endpoint host: virtual-hosted or path style, regional, dash-region, legacy global `<bucket>.s3.amazonaws.com`, website or "
    "accelerate; or a plain name under a key, or a `{name, value}` entry's name, ending in a bucket word: `bucket`, `targetBucket`, "
    "`EXPORT_BUCKET`, `s3BucketName`) must be a bucket of this stack in an allowed region, each AWS regional host name "
    "(`*.<region>.amazonaws.com`, `*.on.aws`, `*.api.aws`) must name an allowed region, an SDK endpoint override "
    "(`AWS_ENDPOINT_URL*` in a function's or container's environment) must be an AWS endpoint in the zone, and a CNAME record's "
    "target or any record's alias target (A, AAAA, CNAME) must be an AWS host in the zone or one of the stack's own record names "
    "(a CloudFront distribution only with `allowGlobalEdge`). Properties AWS takes base64-encoded are read decoded too (gunzipped "
    "when gzip, as cloud-init takes it): a launch template's `userData`, `userDataBase64` of an instance, spot request, launch "
    "configuration or Image Builder recipe, SageMaker lifecycle scripts (`onCreate`, `onStart`, "
    "`studioLifecycleConfigContent`), an MSK Connect worker's `propertiesFileContent`, a secret version's `secretBinary`, an S3 "
    "object's `contentBase64`. "
    "It so covers secondary paths the list does not name: dead-letter queues of targets, schedules, subscriptions and queues "
    "(`redrivePolicy`), pipe logs, budget notification topics, load balancer access and connection log buckets, DNS record "
    "targets, Lambda layers. An ARN of a resource this stack defines in another region (the failover alarms Route 53 keeps in "
    "us-east-1) is that resource's region, judged by aws-resource-region-allowed with its reasoned exceptions. Reviewed "
    "exceptions, each with its reason in destinationscan.py: region-less ARNs of global services (IAM, STS, Organizations, Route 53, "
    "Budgets, Cost Explorer, CUR) and of account `aws` (AWS-managed policies, EKS access policies); IAM and STS ARNs of other "
    "accounts and the caller a permission admits (`sourceArn`/`sourceAccount` of aws:lambda/permission, `sourceAccount` of "
    "aws:acmpca/permission, the only types whose properties of those names name a caller; principals and callers are the access "
    "rules' claim); S3's service principals (`logging`, `batchoperations`, `access-grants` `.s3.amazonaws.com`); the AWS-published Secrets Manager rotation applications "
    "(`arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManager*`); ACM validation targets (`*.acm-validations.aws`) "
    "of `_`-named records; patterns (`*`, `${...}`), which scope a permission and name no destination. A reference only known "
    "after apply under a property whose name says it points somewhere (`*Arn`, `bucket`, `records`, a record's alias target, `endpoint`, `url`, "
    "`redrivePolicy`, `destination`, `target`, `layers`...; role and policy ARNs aside) is an advisory naming each such "
    "property, one per resource; one property draws one finding, and the properties a named path, "
    "aws-replication-destination-allowed or sns-subscription-endpoint-in-zone judge are left to them",
    why="Data leaves the zone by every path that copies or forwards it, not only replication: an event, a log line or a "
    "cached object delivered to another region or account is tenant data outside the residency the zone promises.",
    reads=TYPES,
    check=check_destinations,
    severity=CRITICAL,
    config=_REGIONS,
    required=["allowedRegions"],
    remediation="Deliver to a resource this stack creates through an allowed region's provider and reference it by its "
    "output (`stream.arn`, `bucket.arn`), in the account the providers' `allowedAccountIds` name; serve the zone's "
    "data from the regional load balancer, not CloudFront.",
    limits="A destination is placed by its ARN's region and account, or an S3 bucket by name (a stack bucket's given "
    "name, prefix or Pulumi auto-name from its logical name); what a destination forwards onwards is judged only if "
    "that destination is in the stack. A VPC endpoint service is placed by the region its name carries, not by who "
    "runs it (a PrivateLink service of another account in the zone passes). Paths AWS opens at runtime (a Lambda function's own API calls, an application "
    "writing to another region's endpoint) are not in the plan. The generic pass places a reference by its text: a host outside "
    "AWS's regional domains is judged only as a DNS record's target or an endpoint override (a webhook URL in an https "
    "subscription, an A record's IP address and a hostname inside free text pass); no encoding but base64 (and gzip within it) "
    "on the properties named above is read: base64 elsewhere, URL-encoding, other compression or encryption hide a reference "
    "from the pass; a value built from a stack resource's "
    "output that names elsewhere is caught at `pulumi up`, when known, not at preview (an advisory then).",
    tags=["residency"],
)

POLICIES = [destination_in_zone]
