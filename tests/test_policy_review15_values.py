"""What review 15 left: a service principal pinned by `aws:SourceArn` to an S3 bucket (bucket ARNs
carry no account, so only a bucket the stack defines, by its planned name, pins it), and types
reviewed for one use whose reason claimed something about a value (policies/inventory.py REVIEWED:
the metric alarm's actions, the EventBridge rule as a schedule or a pattern on the stack's buses, the ACM certificate, bucket
ownership controls, the Route 53 zone), now checked in policies/reviewed.py. Each attack, replayed
on the us stack's real plan through the analyzer, is a mandatory violation of its rule; each
legitimate twin passes the whole pack."""

from __future__ import annotations

import copy
import json

import pytest

from .helpers import attack_and_twin_tests
from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

ACCOUNT, FOREIGN = "123456789012", "999988887777"
ALARM, RULE = "us-cost-enforcer-errors", "us-cost-enforcer-schedule"
CERT, OWNERSHIP = "us-api-domain-us-east-1-cert", "us-us-east-1-tenant-pool-data-owner"
PRINCIPALS, REVIEWED = "resource-policy-principals-in-account", "pack-resource-type-reviewed"


def one(resources, name: str, type_part: str) -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def update(name: str, type_part: str, drop: tuple[str, ...] = (), **inputs):
    def mutate(resources):
        node = one(resources, name, type_part)["inputs"]
        for key in drop:
            node.pop(key, None)
        node.update(inputs)

    return mutate


def pool(resources) -> str:
    return one(resources, "us-us-east-1-tenant-pool-data-tls-only", "bucketPolicy")["inputs"]["bucket"]


def s3_permission(source_arn, **inputs):
    """A Lambda permission letting S3 invoke the cost enforcer, pinned by `sourceArn` (a function of the plan)."""

    def mutate(resources):
        like = copy.deepcopy(one(resources, "us-cost-enforcer-from-alerts", "lambda/permission"))
        like["name"], like["urn"] = "from-s3", like["urn"].rsplit("::", 1)[0] + "::from-s3"
        arn = source_arn(resources) if callable(source_arn) else source_arn
        like["inputs"].update(principal="s3.amazonaws.com", sourceArn=arn, **inputs)
        like["propertyDependencies"].pop("sourceArn", None)
        resources.append(like)

    return mutate


def topic_policy_for_s3(source_arn: str):
    """The alerts topic's policy lets S3 publish, pinned by `aws:SourceArn` only."""

    def mutate(resources):
        holder = next(r for r in resources if r["type"] == "aws:sns/topicPolicy:TopicPolicy")
        doc = json.loads(holder["inputs"]["policy"])
        doc["Statement"].append(
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"ArnLike": {"aws:SourceArn": source_arn}},
            }
        )
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def alarm_action(action: str):
    def mutate(resources):
        one(resources, ALARM, "metricAlarm")["inputs"]["alarmActions"].append(action)

    return mutate


def private_zone(vpc_id, linked: bool):
    """A private hosted zone associated with one VPC (built from the stack's VPC, or not)."""

    def mutate(resources):
        vpc = one(resources, "us-us-east-1-net-vpc", "ec2/vpc:Vpc")
        urn = vpc["urn"].rsplit("::", 1)[0].rsplit("$", 1)[0] + "$aws:route53/zone:Zone::private-zone"
        links = [vpc["urn"]] if linked else []
        resources.append(
            {
                **{k: vpc[k] for k in ("custom", "parent", "provider", "region", "protect")},
                "urn": urn,
                "type": "aws:route53/zone:Zone",
                "name": "private-zone",
                "inputs": {"name": "internal.example.com", "vpcs": [{"vpcId": vpc_id}] if vpc_id else []},
                "dependencies": links,
                "propertyDependencies": {"vpcs": links} if linked else {},
            }
        )

    return mutate


ATTACKS = [
    ("S3 invokes the enforcer for a bucket not in the plan", s3_permission("arn:aws:s3:::someone-elses-bucket"), PRINCIPALS),
    (
        "S3 publishes to the alerts topic for a bucket not in the plan",
        topic_policy_for_s3("arn:aws:s3:::someone-elses-bucket"),
        PRINCIPALS,
    ),
    ("an alarm that also publishes to a foreign topic", alarm_action(f"arn:aws:sns:us-east-1:{FOREIGN}:alerts"), REVIEWED),
    ("an alarm that terminates instances", alarm_action("arn:aws:automate:us-east-1:ec2:terminate"), REVIEWED),
    (
        "an EventBridge rule matching events of a bus the stack does not define (review 18 L53 made the default bus's legitimate)",
        update(
            RULE,
            "eventRule",
            eventPattern='{"source": ["aws.s3"]}',
            eventBusName=f"arn:aws:events:us-east-1:{FOREIGN}:event-bus/partner",
        ),
        REVIEWED,
    ),
    ("an EventBridge rule with neither", update(RULE, "eventRule", drop=("scheduleExpression",)), REVIEWED),
    (
        "an imported certificate (its private key in the plan)",
        update(
            CERT, "acm/certificate", drop=("validationMethod",), privateKey="-----BEGIN PRIVATE KEY-----", certificateBody="x"
        ),
        REVIEWED,
    ),
    (
        "a certificate of a foreign private CA",
        update(
            CERT,
            "acm/certificate",
            drop=("validationMethod",),
            certificateAuthorityArn=f"arn:aws:acm-pca:us-east-1:{FOREIGN}:certificate-authority/x",
        ),
        REVIEWED,
    ),
    ("an e-mail validated certificate", update(CERT, "acm/certificate", validationMethod="EMAIL"), REVIEWED),
    (
        "pool ownership BucketOwnerPreferred (ACLs back on)",
        update(OWNERSHIP, "OwnershipControls", rule={"objectOwnership": "BucketOwnerPreferred"}),
        REVIEWED,
    ),
    ("pool ownership ObjectWriter", update(OWNERSHIP, "OwnershipControls", rule={"objectOwnership": "ObjectWriter"}), REVIEWED),
    ("a private zone answering another VPC", private_zone("vpc-0f00f00f00f00f00f", linked=False), REVIEWED),
]

TWINS = [
    ("S3 invokes the enforcer for the stack's pool bucket", s3_permission(lambda resources: f"arn:aws:s3:::{pool(resources)}")),
    (
        "S3 invokes the enforcer for another bucket, pinned to the account",
        s3_permission("arn:aws:s3:::partner-bucket", sourceAccount=ACCOUNT),
    ),
    ("an alarm without actions", update(ALARM, "metricAlarm", alarmActions=[], okActions=[])),
    ("a cron schedule", update(RULE, "eventRule", scheduleExpression="cron(0 * * * ? *)")),
    ("a DNS-validated certificate with an EC key", update(CERT, "acm/certificate", keyAlgorithm="EC_prime256v1")),
    ("a public zone", private_zone(None, linked=False)),
    ("a private zone on the stack's VPC", private_zone("vpc-of-the-stack", linked=True)),
]


test_each_attack_is_a_mandatory_violation_of_its_rule, test_each_legitimate_twin_passes_the_whole_pack = attack_and_twin_tests(
    ATTACKS, TWINS
)


@pytest.mark.parametrize(
    "what,mutation,prop",
    [
        ("an alarm action unknown and built from no topic", alarm_action(UNKNOWN), "alarmActions"),
        ("a private zone's VPC unknown and built from no VPC", private_zone(UNKNOWN, linked=False), "vpcs"),
    ],
)
def test_a_value_these_checks_read_unknown_is_an_advisory(judge, what, mutation, prop):
    found = judge(mutation)
    assert [v for v in found if v.level == "mandatory"] == [], what
    assert any(v.policy == REVIEWED and prop in v.message and "unverifiable at preview" in v.message for v in found), what
