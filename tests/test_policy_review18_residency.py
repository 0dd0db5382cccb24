"""Security review 18, structural weakness 2 (residency as a list of primary destination properties),
replayed on the real plans through the analyzer: a secondary destination (a target's, a schedule's, a
subscription's or a queue's dead-letter queue, a pipe's log stream, a budget's topics, a load balancer's
connection and access log buckets, a DNS record's target, a function's layers and SDK endpoint) out of
the zone is a mandatory violation of aws-data-path-destination-in-zone, one only known after apply is
its advisory, and the legitimate twins (in the zone, in the stack, the DR region, outside AWS where no
data of the zone goes) draw nothing from the rule."""

from __future__ import annotations

import json

import pytest

from .helpers import assert_mandatory, both
from .test_policy_review16 import cell_judge  # noqa: F401 (the cell's plan, a module fixture)

pytestmark = pytest.mark.slow  # the plans come from the previews fixture

RULE = "aws-data-path-destination-in-zone"
ACCOUNT = "123456789012"
FOREIGN = "999988887777"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an output unknown at preview
EU_QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:parked-events"
ENFORCER = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:us-cost-cap-enforcer"
PROVIDER = "urn:pulumi:us::meridian::pulumi:pulumi:Stack$pulumi:providers:aws::us-east-1"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def setp(name: str, path: str, value, type_part: str = ""):
    """Set `inputs.<path>` of one resource (a dotted path; list indexes as numbers)."""

    def mutate(resources):
        node = one(resources, name, type_part)["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


def new(type_: str, name: str, inputs: dict, deps: dict | None = None):
    """A resource of the us stack in us-east-1, appended to the plan."""

    def mutate(resources):
        resources.append(
            {
                "urn": f"urn:pulumi:us::meridian::{type_}::{name}",
                "type": type_,
                "name": name,
                "custom": True,
                "parent": "urn:pulumi:us::meridian::pulumi:pulumi:Stack::meridian-us",
                "provider": PROVIDER,
                "inputs": inputs,
                "dependencies": [u for urns in (deps or {}).values() for u in urns],
                "propertyDependencies": deps or {},
            }
        )

    return mutate


def primary_to(host: str):
    def mutate(resources):
        record = one(resources, "us-failover-primary-record")
        record["inputs"].update({"type": "CNAME", "records": [host]})
        record["inputs"].pop("aliases", None)

    return mutate


def enforcer_env(name: str, value: str):
    def mutate(resources):
        one(resources, "us-cost-enforcer", "lambda/function")["inputs"]["environment"]["variables"][name] = value

    return mutate


def without_own_log_bucket(resources):
    """R59b: the ALB's access logs to a literal bucket, the link and the stack's own log bucket removed."""
    lb = one(resources, "us-use1-lb-api", "lb/loadBalancer")
    lb["inputs"]["accessLogs"]["bucket"] = "attacker-access-logs-eu"
    lb["propertyDependencies"].pop("accessLogs", None)
    resources[:] = [r for r in resources if not r["name"].startswith("us-use1-lb-logs")]


def queue(name: str, redrive: str | None = None, region_arn_of_dlq: str | None = None):
    inputs = {"name": name, "kmsMasterKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/e623427a-8001-4edc-ae62-e623427a8001"}
    if redrive:
        inputs["redrivePolicy"] = json.dumps({"deadLetterTargetArn": redrive, "maxReceiveCount": 3})
    return new("aws:sqs/queue:Queue", name, inputs)


def schedule(dlq: str):
    return new(
        "aws:scheduler/schedule:Schedule",
        "enforcer-nightly",
        {
            "scheduleExpression": "rate(1 day)",
            "flexibleTimeWindow": {"mode": "OFF"},
            "target": {"arn": ENFORCER, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler", "deadLetterConfig": {"arn": dlq}},
        },
    )


def pipe(log_stream: str):
    return new(
        "aws:pipes/pipe:Pipe",
        "events-pipe",
        {
            "source": f"arn:aws:sqs:us-east-1:{ACCOUNT}:us-work",
            "target": ENFORCER,
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/pipe",
            "logConfiguration": {
                "level": "TRACE",
                "includeExecutionDatas": ["ALL"],
                "firehoseLogDestination": {"deliveryStreamArn": log_stream},
            },
        },
    )


def subscription(protocol: str, endpoint: str):
    return new(
        "aws:sns/topicSubscription:TopicSubscription",
        f"extra-{protocol}-sub",
        {"topic": f"arn:aws:sns:us-east-1:{ACCOUNT}:us-cost-alerts-981522b", "protocol": protocol, "endpoint": endpoint},
    )


def k8s_endpoint_override(resources):
    """A container env entry (`{name, value}`) overriding the SDK endpoint, in the first Deployment."""
    deployment = next(r for r in resources if r["type"] == "kubernetes:apps/v1:Deployment")
    container = deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container.setdefault("env", []).append({"name": "AWS_ENDPOINT_URL_S3", "value": "https://s3.eu-west-1.amazonaws.com"})


ATTACKS = [
    ("R41 event target dead-letter queue in eu-west-1", setp("us-cost-enforcer-target", "deadLetterConfig", {"arn": EU_QUEUE})),
    (
        "R42 SNS subscription redrive policy to eu-west-1",
        setp("us-cost-alerts-to-enforcer", "redrivePolicy", json.dumps({"deadLetterTargetArn": EU_QUEUE})),
    ),
    (
        "R43 the regional API record to an eu-west-1 load balancer",
        setp("us-failover-us-east-1-regional", "records", ["meridian-eu-123.eu-west-1.elb.amazonaws.com"]),
    ),
    ("R44 the failover PRIMARY record to a host outside AWS", primary_to("api.attacker.example")),
    ("R44 the failover PRIMARY record to a CloudFront distribution", primary_to("d111111abcdef8.cloudfront.net")),
    (
        "R45 a layer of another account and region",
        setp("us-cost-enforcer", "layers", [f"arn:aws:lambda:eu-west-1:{FOREIGN}:layer:telemetry:3"], "lambda/function"),
    ),
    (
        "R45 a layer of another account in the zone",
        setp("us-cost-enforcer", "layers", [f"arn:aws:lambda:us-east-1:{FOREIGN}:layer:telemetry:3"], "lambda/function"),
    ),
    ("R46 AWS_ENDPOINT_URL to a host outside AWS", enforcer_env("AWS_ENDPOINT_URL", "https://proxy.attacker.example")),
    ("R46 a service endpoint override to eu-west-1", enforcer_env("AWS_ENDPOINT_URL_SQS", "https://sqs.eu-west-1.amazonaws.com")),
    ("R46 a container's endpoint override to eu-west-1", k8s_endpoint_override),
    ("R54 a queue's redrive policy to eu-west-1", queue("us-work", EU_QUEUE)),
    (
        "R54 a queue's redrive policy to a foreign account in the zone",
        queue("us-work", f"arn:aws:sqs:us-east-1:{FOREIGN}:parked"),
    ),
    ("R55 a schedule's dead-letter queue in eu-west-1", schedule(EU_QUEUE)),
    ("R56 a pipe's execution log stream in eu-west-1", pipe(f"arn:aws:firehose:eu-west-1:{ACCOUNT}:deliverystream/pipe-logs")),
    (
        "R57 acme's budget notifies a topic in eu-west-1",
        setp("us-cost-tenant-acme", "notifications.0.subscriberSnsTopicArns", [f"arn:aws:sns:eu-west-1:{ACCOUNT}:finops"]),
    ),
    (
        "R57 acme's budget notifies a topic in another partition",
        setp("us-cost-tenant-acme", "notifications.0.subscriberSnsTopicArns", [f"arn:aws-cn:sns:cn-north-1:{ACCOUNT}:finops"]),
    ),
    (
        "R58 the ALB's connection logs to a bucket the stack does not own",
        setp("us-use1-lb-api", "connectionLogs", {"bucket": "attacker-conn-logs-eu", "enabled": True, "prefix": "c"}),
    ),
    ("R59b the ALB's access logs to a literal bucket, the own bucket removed", without_own_log_bucket),
    (
        "a pipe's S3 log destination naming no bucket of the stack",
        new(
            "aws:pipes/pipe:Pipe",
            "s3-pipe",
            {
                "source": f"arn:aws:sqs:us-east-1:{ACCOUNT}:us-work",
                "target": ENFORCER,
                "logConfiguration": {"level": "ERROR", "s3LogDestination": {"bucketName": "someone-elses-logs"}},
            },
        ),
    ),
    (
        "a region-less ARN of a service not reviewed as global",
        setp("us-cost-enforcer-target", "deadLetterConfig", {"arn": f"arn:aws:sqs::{ACCOUNT}:parked-events"}),
    ),
]


@pytest.mark.parametrize(("what", "mutation"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_a_secondary_destination_out_of_the_zone_is_refused(judge, what, mutation):
    violations = judge(mutation)
    assert_mandatory(violations, RULE, what)


UNKNOWNS = [
    (
        "U43 event target dead-letter arn",
        setp("us-cost-enforcer-target", "deadLetterConfig", {"arn": UNKNOWN}),
        "deadLetterConfig.arn",
    ),
    ("U44 subscription redrive policy", setp("us-cost-alerts-to-enforcer", "redrivePolicy", UNKNOWN), "redrivePolicy"),
    ("U46 function layers", setp("us-cost-enforcer", "layers", UNKNOWN, "lambda/function"), "layers"),
    (
        "U50 the regional API record's records (its link kept)",
        setp("us-failover-us-east-1-regional", "records", UNKNOWN),
        "records",
    ),
    (
        "an ALB's connection log bucket",
        setp("us-use1-lb-api", "connectionLogs", {"bucket": UNKNOWN, "enabled": True}),
        "connectionLogs.bucket",
    ),
]


@pytest.mark.parametrize(("what", "mutation", "prop"), UNKNOWNS, ids=[u[0] for u in UNKNOWNS])
def test_a_destination_unknown_at_preview_is_an_advisory_naming_it(judge, what, mutation, prop):
    hits = [v for v in judge(mutation) if v.policy == RULE]
    assert hits, f"{what}: silent"
    assert all(v.level == "advisory" for v in hits), hits
    assert any(v.message.startswith("unverifiable at preview: ") and prop in v.message for v in hits), hits


def own_log_bucket_for_connections(resources):
    bucket = one(resources, "us-use1-lb-api", "lb/loadBalancer")["inputs"]["accessLogs"]["bucket"]
    setp("us-use1-lb-api", "connectionLogs", {"bucket": bucket, "enabled": True, "prefix": "conn"})(resources)


TWINS = [
    (
        "an in-stack dead-letter queue in the zone",
        both(queue("us-dlq"), queue("us-work", f"arn:aws:sqs:us-east-1:{ACCOUNT}:us-dlq")),
    ),
    (
        "the event target's dead-letter queue in the DR region",
        setp("us-cost-enforcer-target", "deadLetterConfig", {"arn": f"arn:aws:sqs:us-west-2:{ACCOUNT}:parked"}),
    ),
    ("a schedule's dead-letter queue in the zone", schedule(f"arn:aws:sqs:us-east-1:{ACCOUNT}:us-dlq")),
    ("a PagerDuty https subscription", subscription("https", "https://events.pagerduty.com/integration/abc123/enqueue")),
    ("an SNS-to-SQS subscription in the zone", subscription("sqs", f"arn:aws:sqs:us-west-2:{ACCOUNT}:us-alarm-audit")),
    ("the ALB's connection logs to the stack's own log bucket", own_log_bucket_for_connections),
    (
        "a budget notifying the stack's topic",
        setp(
            "us-cost-tenant-acme",
            "notifications.0.subscriberSnsTopicArns",
            [f"arn:aws:sns:us-east-1:{ACCOUNT}:us-cost-alerts-981522b"],
        ),
    ),
    (
        "an endpoint override to the zone's own regional endpoint",
        enforcer_env("AWS_ENDPOINT_URL_STS", "https://sts.us-east-1.amazonaws.com"),
    ),
    ("the failover PRIMARY record to another of the stack's own names", primary_to("api-us-east-1.us.meridian.example.com")),
    (
        "a role of the account named on a target (IAM is global)",
        setp("us-cost-enforcer-target", "roleArn", f"arn:aws:iam::{ACCOUNT}:role/service-role/events"),
    ),
]


@pytest.mark.parametrize(("what", "mutation"), TWINS, ids=[t[0] for t in TWINS])
def test_a_legitimate_destination_draws_nothing(judge, what, mutation):
    hits = [(v.level, v.message) for v in judge(mutation) if v.policy == RULE]
    assert hits == [], f"{what}: {hits}"


@pytest.mark.parametrize("stack", ["us", "eu", "apac"])
def test_the_shipped_plans_draw_nothing(judge, stack):
    """The eu and apac stacks keep their failover alarms and topic in us-east-1 (Route 53 health-check
    metrics exist only there): references to those resources of the stack are theirs to judge
    (aws-resource-region-allowed's exceptions); the Secrets Manager rotation application comes from
    AWS's own account in us-east-1 (reviewed)."""
    assert [(v.level, v.message) for v in judge(stack=stack) if v.policy == RULE] == []


def test_the_cell_plan_draws_nothing(cell_judge):  # noqa: F811 (the imported fixture)
    """The cell's budgets notify the platform's topic (same account, same region, by ARN)."""
    assert [(v.level, v.message) for v in cell_judge(lambda resources: None) if v.policy == RULE] == []


def test_one_property_draws_one_finding(judge):
    """The named path (an event target's `arn`) keeps its own message; the generic pass adds nothing
    for it, and several out-of-zone ARNs in one property make one finding."""
    both_out = both(
        setp("us-cost-enforcer-target", "arn", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:x"),
        setp("us-cost-enforcer-target", "deadLetterConfig", {"arn": EU_QUEUE + "," + EU_QUEUE}),
    )
    hits = [v.message for v in judge(both_out) if v.policy == RULE]
    assert len([m for m in hits if m.startswith("EventTarget arn ")]) == 1, hits
    assert len([m for m in hits if "deadLetterConfig" in m]) == 1, hits
    assert len(hits) == 2, hits
