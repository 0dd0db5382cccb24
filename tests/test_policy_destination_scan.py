"""The generic residency pass's readers (policies/destinationscan.py), tried with the spellings an
attacker would use to slip a reference past them: ARNs inside JSON text and lists, other partitions,
legacy and dual-stack host forms, trailing dots, upper case; and the reviewed exceptions, which must not
widen to their neighbours."""

from __future__ import annotations

import sys

import pytest

from .helpers import ROOT

sys.path.insert(0, str(ROOT / "policies"))
import destinationscan  # noqa: E402

sys.path.remove(str(ROOT / "policies"))

ACCOUNT = "123456789012"


class _NoResources:
    resources: list = []

    def of(self, *types):
        return []


def scan(allowed=("us-east-1", "us-west-2")):
    return destinationscan.Scan(_NoResources(), set(allowed), {ACCOUNT}, allow_edge=False)


def arn_verdict(text: str):
    found = [destinationscan.arn_problem(scan(), m) for m in destinationscan.ARN.finditer(text)]
    assert found, f"no ARN read in {text!r}"
    return next((f for f in found if f), None)


@pytest.mark.parametrize(
    "text",
    [
        '{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:123456789012:q","maxReceiveCount":3}',
        "arn:aws:sqs:us-east-1:123456789012:ok,arn:aws:sqs:eu-west-1:123456789012:q",
        "arn:aws-cn:sns:cn-north-1:123456789012:t",
        "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q",
        "arn:aws:sqs:us-east-1:999988887777:q",  # in the zone, another account
        "arn:aws:lambda:us-east-1:999988887777:layer:x:3",
        "arn:aws:sqs::123456789012:q",  # no region, not a global service
        "arn:aws:cloudfront::123456789012:distribution/E1",
        "arn:aws:serverlessrepo:us-east-1:999988887777:applications/SecretsManagerRDSPostgreSQLRotationSingleUser",
        "arn:aws:serverlessrepo:eu-west-1:297356227824:applications/Other",
        "arn:aws:s3:::no-bucket-of-this-stack/key",
    ],
)
def test_an_arn_out_of_the_zone_or_account_is_found(text):
    assert arn_verdict(text)


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:sqs:us-west-2:123456789012:q",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::127311923021:root",  # a principal: the access rules' claim
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
        "arn:aws:budgets::123456789012:budget/x",
        "arn:aws:route53:::hostedzone/Z1",
        "arn:aws:kms:*:123456789012:key/*",  # a pattern scopes a permission
        "arn:aws:s3:::mer-*/tenants/${aws:PrincipalTag/ns}/*",
        "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser",
    ],
)
def test_an_arn_in_the_zone_or_reviewed_passes(text):
    assert arn_verdict(text) is None


@pytest.mark.parametrize(
    "host",
    [
        "x-1.eu-west-1.elb.amazonaws.com",
        "dualstack.x-1.eu-west-1.elb.amazonaws.com.",
        "s3-website-eu-west-1.amazonaws.com",
        "X.EU-WEST-1.ELB.AMAZONAWS.COM",
        "abc.lambda-url.eu-west-1.on.aws",
        "s3.dualstack.eu-west-1.api.aws",
        "x.cn-north-1.amazonaws.com.cn",
    ],
)
def test_a_host_of_another_region_is_found(host):
    hits = [m.group(1) for m in destinationscan.HOST.finditer(f"https://{host}/path")]
    assert hits and destinationscan.host_problem(scan(), hits[0])


def test_a_host_of_the_zone_and_a_global_endpoint_pass():
    for host in ("x-1.us-east-1.elb.amazonaws.com", "s3.us-west-2.amazonaws.com", "iam.amazonaws.com"):
        assert destinationscan.host_problem(scan(), host) is None


def test_a_record_target_outside_aws_is_found_unless_reviewed():
    s = scan()
    s.record_names = {"api.us.example.com"}
    assert destinationscan.outside_host_problem(s, "api.attacker.example", "api.us.example.com")
    assert destinationscan.outside_host_problem(s, "d1.cloudfront.net", "api.us.example.com")
    assert destinationscan.outside_host_problem(s, "_x.acm-validations.aws.", "api.us.example.com")  # not a validation record
    assert destinationscan.outside_host_problem(s, "evil-api.us.example.com.attacker.example", "api.us.example.com")
    assert destinationscan.outside_host_problem(s, "_x.acm-validations.aws.", "_abc.api.us.example.com") is None
    assert destinationscan.outside_host_problem(s, "api.us.example.com.", "www.us.example.com") is None
