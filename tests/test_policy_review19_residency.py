"""Security review 19, the generic residency pass read in every form its claim names (D01, D02, D04,
D09, D12, D21, D22), a target group's explicit `/` health path (H05) and a cell tenant's association
without session tags (C12), replayed on the real plans through the analyzer with one mutation each.
Each attack is a mandatory violation of its rule; each legitimate twin (the same form naming the
stack's own bucket, host or load balancer, in the zone) draws nothing from the whole pack."""

from __future__ import annotations

import base64
import gzip

import pytest

from .helpers import assert_mandatory
from .test_policy_review16 import cell_judge  # noqa: F401 (the cell's plan, a module fixture)

pytestmark = pytest.mark.slow  # the plans come from the previews fixture

RULE = "aws-data-path-destination-in-zone"
ACCOUNT = "123456789012"
FOREIGN = "999988887777"
POOL = "us-us-east-1-tenant-pool-data-bucket-ed3f900"  # the pool bucket (us-east-1)
DR_POOL = "us-us-west-2-tenant-pool-data-bucket-e321cb3"  # its DR copy (us-west-2, in the zone)
OWN_ALB = "us-use1-lb-api-d23bd4a-1044870711.us-east-1.elb.amazonaws.com"
NODE_TEMPLATE = "us-us-east-1-eks-nodes-lt"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an output unknown at preview
PROVIDER = "urn:pulumi:us::meridian::pulumi:pulumi:Stack$pulumi:providers:aws::us-east-1"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def enforcer_env(name: str, value: str):
    """A variable of the cost-enforcer Lambda function (`environment.variables`)."""

    def mutate(resources):
        one(resources, "us-cost-enforcer", "lambda/function")["inputs"]["environment"]["variables"][name] = value

    return mutate


def api_env(name: str, value: str):
    """An entry (`{name, value}`) of the platform API container's env."""

    def mutate(resources):
        container = one(resources, "us-us-east-1-api-api")["inputs"]["spec"]["template"]["spec"]["containers"][0]
        container.setdefault("env", []).append({"name": name, "value": value})

    return mutate


def regional_alias(
    record_type: str, target: str, zone_id: str, evaluate: bool = False, name: str = "us-failover-us-east-1-regional"
):
    """A failover record turned into an alias record (`aliases`, no `records`/`ttl`)."""

    def mutate(resources):
        record = one(resources, name, "route53/record")["inputs"]
        record.pop("records", None)
        record.pop("ttl", None)
        record.update({"type": record_type, "aliases": [{"name": target, "zoneId": zone_id, "evaluateTargetHealth": evaluate}]})

    return mutate


def node_user_data(script: str, gzipped: bool = False):
    """The node launch template's `userData` (base64, as EC2 takes it), optionally gzip inside."""
    raw = gzip.compress(script.encode()) if gzipped else script.encode()

    def mutate(resources):
        one(resources, NODE_TEMPLATE, "ec2/launchTemplate")["inputs"]["userData"] = base64.b64encode(raw).decode()

    return mutate


def instance(user_data_base64: str):
    def mutate(resources):
        resources.append(
            {
                "urn": "urn:pulumi:us::meridian::aws:ec2/instance:Instance::bastion",
                "type": "aws:ec2/instance:Instance",
                "name": "bastion",
                "custom": True,
                "parent": "urn:pulumi:us::meridian::pulumi:pulumi:Stack::meridian-us",
                "provider": PROVIDER,
                "inputs": {"ami": "ami-0abcdef1234567890", "instanceType": "t3.micro", "userDataBase64": user_data_base64},
                "dependencies": [],
                "propertyDependencies": {},
            }
        )

    return mutate


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


EU_QUEUE_POST = f"#!/bin/bash\ncurl -s -X POST https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/q --data @/var/log/messages\n"

ATTACKS = [
    (
        "D09 an upper-case regional host out of the zone",
        enforcer_env("QUEUE", f"https://SQS.EU-WEST-1.AMAZONAWS.COM/{ACCOUNT}/q"),
    ),
    ("D09 (guard) an upper-case ARN region out of the zone", enforcer_env("QUEUE", f"arn:aws:sqs:EU-WEST-1:{ACCOUNT}:q")),
    ("D02 an s3:// URI naming no bucket of the stack", api_env("EXPORT_BUCKET", "s3://meridian-exports-eu-west-1/dumps")),
    ("D02 an s3a:// URI naming no bucket of the stack", enforcer_env("SPARK_OUT", "s3a://meridian-exports-eu-west-1/out/")),
    ("D21 a plain bucket name under EXPORT_BUCKET", enforcer_env("EXPORT_BUCKET", "meridian-exports-eu")),
    ("D21 a plain bucket name under exportBucketName", enforcer_env("exportBucketName", "meridian-exports-eu")),
    ("D21 a plain bucket name under a container env EXPORT_BUCKET", api_env("EXPORT_BUCKET", "meridian-exports-eu")),
    ("D01 a foreign bucket's host under a bucket key", api_env("LOG_BUCKET", "meridian-exports-eu.s3.amazonaws.com")),
    (
        "D01 the legacy global endpoint names a foreign bucket",
        api_env("EXPORT_URL", "https://meridian-exports-eu.s3.amazonaws.com/"),
    ),
    ("D01 path style on the global endpoint", api_env("EXPORT_URL", "https://s3.amazonaws.com/meridian-exports-eu/dumps")),
    (
        "D01 the dash-region endpoint in the zone, a foreign bucket",
        api_env("EXPORT_URL", "https://meridian-exports.s3-us-east-1.amazonaws.com"),
    ),
    (
        "D01 the dot-region endpoint in the zone, a foreign bucket",
        enforcer_env("EXPORT_URL", "https://x.exports.s3.us-east-1.amazonaws.com/k"),
    ),
    (
        "D01 a website endpoint of a foreign bucket",
        enforcer_env("SITE", "http://meridian-exports.s3-website-us-east-1.amazonaws.com"),
    ),
    (
        "D01 path style on a regional endpoint in the zone",
        enforcer_env("EXPORT_URL", "https://s3.us-east-1.amazonaws.com/meridian-exports/k"),
    ),
    ("D12 an A alias to a CloudFront distribution", regional_alias("A", "d111abcdef8.cloudfront.net", "Z2FDTNDATAQYW2")),
    ("D12 an AAAA alias to a host outside AWS", regional_alias("AAAA", "api.attacker.example", "Z00000000000")),
    (
        "D12 an A alias to a load balancer out of the zone",
        regional_alias("A", "dualstack.x-1.eu-west-1.elb.amazonaws.com", "Z32O12XQLNTSW2"),
    ),
    ("D22 a function variable named SOURCEARN", enforcer_env("SOURCEARN", f"arn:aws:sqs:eu-west-1:{FOREIGN}:exports")),
    ("D04 a launch template's base64 userData", node_user_data(EU_QUEUE_POST)),
    ("D04 a launch template's gzip+base64 userData", node_user_data(EU_QUEUE_POST, gzipped=True)),
    ("D04 an instance's userDataBase64", instance(b64(EU_QUEUE_POST))),
]


@pytest.mark.parametrize(("what", "mutation"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_a_destination_in_any_form_out_of_the_zone_is_refused(judge, what, mutation):
    assert_mandatory(judge(mutation), RULE, what)


EKS_USER_DATA = (
    'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="//"\n\n--//\nContent-Type: application/node.eks.aws\n\n'
    "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n    name: us-us-east-1-eks\n"
    "    apiServerEndpoint: https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com\n--//--\n"
)

TWINS = [
    ("an s3:// URI to the stack's own bucket", api_env("EXPORT_BUCKET", f"s3://{POOL}/exports/")),
    ("an s3:// URI to the stack's DR bucket in the zone", enforcer_env("ARCHIVE", f"s3://{DR_POOL}/archive")),
    ("the stack's own bucket under EXPORT_BUCKET", enforcer_env("EXPORT_BUCKET", POOL)),
    ("a bucket-worded key holding no bucket name (a region)", enforcer_env("BUCKET_REGION", "us-east-1")),
    ("an upper-case host in the zone", enforcer_env("QUEUE", f"https://SQS.US-EAST-1.AMAZONAWS.COM/{ACCOUNT}/q")),
    ("the own bucket on its regional endpoint", api_env("EXPORT_URL", f"https://{POOL}.s3.us-east-1.amazonaws.com/")),
    (
        "the own bucket's host under a bucket key (CloudFront's logging form)",
        enforcer_env("LOG_BUCKET", f"{POOL}.s3.amazonaws.com"),
    ),
    ("the own bucket on the legacy global endpoint", api_env("EXPORT_URL", f"https://{POOL}.s3.amazonaws.com/")),
    ("the DR bucket path style", enforcer_env("EXPORT_URL", f"https://s3.us-west-2.amazonaws.com/{DR_POOL}/x")),
    ("a regional S3 endpoint in the zone, no bucket", enforcer_env("S3_URL", "https://s3.us-east-1.amazonaws.com")),
    ("a node launch template's EKS NodeConfig userData (base64)", node_user_data(EKS_USER_DATA)),
    ("a base64 userData posting to the zone", node_user_data(EU_QUEUE_POST.replace("eu-west-1", "us-west-2"))),
]


@pytest.mark.parametrize(("what", "mutation"), TWINS, ids=[t[0] for t in TWINS])
def test_a_legitimate_form_draws_nothing(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


# Alias records to the stack's own load balancer: the residency rule draws nothing (whether a failover pair's
# alias shape fails over in time, with its health check on its target, is route53-failover-record-ready's claim).
ALIAS_TWINS = [
    (
        "the PRIMARY failover record as an A alias to the stack's ALB, evaluating target health",
        regional_alias("A", f"dualstack.{OWN_ALB}", "Z35SXDOTRQ7X7K", evaluate=True, name="us-failover-primary-record"),
    ),
    (
        "the regional record as an AAAA alias to the stack's ALB",
        regional_alias("AAAA", f"dualstack.{OWN_ALB}.", "Z35SXDOTRQ7X7K"),
    ),
]


@pytest.mark.parametrize(("what", "mutation"), ALIAS_TWINS, ids=[t[0] for t in ALIAS_TWINS])
def test_an_alias_to_the_stacks_own_target_draws_nothing_from_the_rule(judge, what, mutation):
    assert [(v.level, v.message) for v in judge(mutation) if v.policy == RULE] == [], what


def test_an_alias_target_unknown_at_preview_is_an_advisory_naming_it(judge):
    """An alias's target only known after apply (a load balancer's `dnsName` on a first preview) is reported,
    as a CNAME's unknown `records` are, never assumed in the zone."""
    hits = [v for v in judge(regional_alias("A", UNKNOWN, "Z35SXDOTRQ7X7K")) if v.policy == RULE]
    assert hits and all(v.level == "advisory" for v in hits), hits
    assert any(v.message.startswith("unverifiable at preview: ") and "aliases.0.name" in v.message for v in hits), hits


def test_a_lambda_permissions_caller_is_not_a_destination(judge):
    """D22's twin: `sourceArn` on `aws:lambda/permission` names who may invoke (data comes from there);
    the generic pass leaves it to the access rules even out of the zone."""
    caller = f"arn:aws:sns:eu-west-1:{ACCOUNT}:us-cost-alerts-eu"

    def mutate(resources):
        one(resources, "us-cost-enforcer-from-alerts", "lambda/permission")["inputs"]["sourceArn"] = caller

    assert [v.message for v in judge(mutate) if v.policy == RULE] == []


def test_an_explicit_root_health_path_is_refused(judge):
    """H05: `path: "/"` is the default the rule refuses, written out."""

    def mutate(resources):
        one(resources, "us-use1-lb-stable", "lb/targetGroup")["inputs"]["healthCheck"]["path"] = "/"

    assert_mandatory(judge(mutate), "lb-target-group-health-checked", "explicit / health path")


def test_a_cell_tenant_association_keeps_session_tags(cell_judge):  # noqa: F811 (the imported fixture)
    """C12: a cell tenant's association with `disableSessionTags` loses the tag the platform's shared
    tenant role tells tenants apart by; the cell lane refuses it as tenant-role-isolated does on the platform."""

    def mutate(resources):
        one(resources, "us-us-east-1-t-wonka-identity")["inputs"]["disableSessionTags"] = True

    hits = [v for v in cell_judge(mutate) if v.level == "mandatory"]
    assert any("session tags" in v.message and "t-wonka-identity" in v.urn for v in hits), [
        (v.policy, v.message) for v in cell_judge(mutate)
    ]
    assert all(" must " in v.message for v in hits), hits
