"""AWS's rules for physical names, and the physical name each registration would get.

Limits come from the CloudFormation resource schemas AWS publishes (their `maxLength` and `pattern`
per property), as cfn-lint bundles them: `meridian/data/cfn_name_limits.json` holds the properties
named below, extracted from the pinned cfn-lint (tests/test_name_limits.py compares and rewrites
it), so a preview needs no cfn-lint. Where a schema states none, the documented limit is written
below with its source. Auto-naming is pulumi-aws's: the logical name, lowercased for the types whose
names must be lowercase, plus `-` and 7 random hex characters.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

AUTONAME_SUFFIX = 8  # "-" + 7 random characters
K8S_AUTONAME_SUFFIX = 9  # "-" + 8 random characters (pulumi-kubernetes)


@dataclass(frozen=True)
class NameRule:
    cfn_type: str
    cfn_property: str
    input_key: str  # the pulumi-aws argument carrying the physical name
    lowercase: bool = False  # pulumi-aws lowercases auto-names of these types
    max_length: int | None = None  # documented limit where the schema states none
    pattern: str | None = None
    source: str = "CloudFormation schema (cfn-lint)"


# pulumi type -> its name rule; only types whose physical name is auto-named or set by the program.
RULES: dict[str, NameRule] = {
    "aws:iam/role:Role": NameRule("AWS::IAM::Role", "RoleName", "name"),
    "aws:iam/policy:Policy": NameRule(
        "AWS::IAM::ManagedPolicy",
        "ManagedPolicyName",
        "name",
        max_length=128,
        pattern=r"^[\w+=,.@-]+$",
        source="IAM quotas: policy name 128 characters",
    ),
    "aws:s3/bucket:Bucket": NameRule("AWS::S3::Bucket", "BucketName", "bucket", lowercase=True),
    "aws:eks/cluster:Cluster": NameRule("AWS::EKS::Cluster", "Name", "name"),
    "aws:eks/nodeGroup:NodeGroup": NameRule(
        "AWS::EKS::Nodegroup",
        "NodegroupName",
        "nodeGroupName",
        max_length=63,
        pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]*$",
        source="EKS API: nodegroupName 1-63",
    ),
    "aws:rds/cluster:Cluster": NameRule("AWS::RDS::DBCluster", "DBClusterIdentifier", "clusterIdentifier", lowercase=True),
    "aws:rds/clusterInstance:ClusterInstance": NameRule(
        "AWS::RDS::DBInstance", "DBInstanceIdentifier", "identifier", lowercase=True
    ),
    "aws:rds/instance:Instance": NameRule("AWS::RDS::DBInstance", "DBInstanceIdentifier", "identifier", lowercase=True),
    "aws:rds/globalCluster:GlobalCluster": NameRule(
        "AWS::RDS::GlobalCluster", "GlobalClusterIdentifier", "globalClusterIdentifier"
    ),
    "aws:rds/subnetGroup:SubnetGroup": NameRule(
        "AWS::RDS::DBSubnetGroup",
        "DBSubnetGroupName",
        "name",
        lowercase=True,
        max_length=255,
        pattern=r"^[a-z0-9 ._-]+$",
        source="RDS API: DBSubnetGroupName 255",
    ),
    "aws:rds/parameterGroup:ParameterGroup": NameRule(
        "AWS::RDS::DBParameterGroup",
        "DBParameterGroupName",
        "name",
        lowercase=True,
        max_length=255,
        source="RDS API: DBParameterGroupName 255",
    ),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": NameRule(
        "AWS::RDS::DBClusterParameterGroup",
        "DBClusterParameterGroupName",
        "name",
        lowercase=True,
        max_length=255,
        source="RDS API: DBClusterParameterGroupName 255",
    ),
    "aws:ecr/repository:Repository": NameRule("AWS::ECR::Repository", "RepositoryName", "name"),
    "aws:cloudwatch/logGroup:LogGroup": NameRule("AWS::Logs::LogGroup", "LogGroupName", "name"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": NameRule("AWS::CloudWatch::Alarm", "AlarmName", "name"),
    "aws:sns/topic:Topic": NameRule(
        "AWS::SNS::Topic",
        "TopicName",
        "name",
        pattern=r"^[A-Za-z0-9_-]{1,256}$",
        source="SNS API: topic name 1-256 of [A-Za-z0-9_-]",
    ),
    "aws:budgets/budget:Budget": NameRule(
        "AWS::Budgets::Budget",
        "BudgetName",
        "name",
        max_length=100,
        pattern=r"^[^:\\]+$",
        source="Budgets API: BudgetName 1-100, no ':' or '\\'",
    ),
    "aws:ec2/securityGroup:SecurityGroup": NameRule(
        "AWS::EC2::SecurityGroup", "GroupName", "name", max_length=255, source="EC2 API: GroupName 255"
    ),
    "aws:kms/alias:Alias": NameRule("AWS::KMS::Alias", "AliasName", "name"),
    # ELB: 32 characters of alphanumerics and hyphens, no hyphen at either end (CreateLoadBalancer /
    # CreateTargetGroup API references); pulumi-aws refuses an auto-name that would exceed 32.
    "aws:lb/loadBalancer:LoadBalancer": NameRule(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Name",
        "name",
        max_length=32,
        pattern=r"^(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$",
        source="ELB API: load balancer name 32, alphanumerics and hyphens, not starting with 'internal-'",
    ),
    "aws:lb/targetGroup:TargetGroup": NameRule(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "Name",
        "name",
        max_length=32,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$",
        source="ELB API: target group name 32, alphanumerics and hyphens",
    ),
}
K8S_NAMESPACE = "kubernetes:core/v1:Namespace"
DNS_LABEL = (63, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # namespaces, label values' shape (RFC 1123 label)
DNS_SUBDOMAIN = (253, r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")  # most other Kubernetes object names


SCHEMA_LIMITS = "data/cfn_name_limits.json"


@functools.cache
def _schema_limits() -> dict[str, dict[str, dict[str, int | str]]]:
    """CloudFormation type -> property -> its schema's maxLength and pattern (those it states)."""
    return json.loads(resources.files("meridian").joinpath(SCHEMA_LIMITS).read_text())["types"]


@functools.cache
def limits(rule: NameRule) -> tuple[int | None, str | None]:
    """(max length, pattern) for a rule: the schema's, else the documented ones above. A rule whose
    property the extract lacks is an error (regenerate it), never a silent pass."""
    prop = _schema_limits()[rule.cfn_type][rule.cfn_property]
    return prop.get("maxLength", rule.max_length), prop.get("pattern", rule.pattern)


@dataclass(frozen=True)
class NameProblem:
    urn: str
    name: str
    message: str


def physical_name(rule: NameRule, logical: str, inputs: dict[str, Any]) -> tuple[str, bool] | None:
    """(name, auto-named?), or None when the name is only known after `up`."""
    explicit = inputs.get(rule.input_key)
    if explicit == "[unknown]" or (explicit is not None and not isinstance(explicit, str)):
        return None
    if isinstance(explicit, str):
        return explicit, False
    base = logical.lower() if rule.lowercase else logical
    return base + "-" + "x" * (AUTONAME_SUFFIX - 1), True


def check_name(rule: NameRule, urn: str, logical: str, inputs: dict[str, Any]) -> list[NameProblem]:
    named = physical_name(rule, logical, inputs)
    if named is None:
        return []
    name, auto = named
    max_length, pattern = limits(rule)
    out = []
    how = f"auto-named from `{logical}` + 8 characters" if auto else "set by the program"
    if max_length is not None and len(name) > max_length:
        out.append(NameProblem(urn, name, f"{rule.cfn_property} is {len(name)} characters ({how}), over AWS's {max_length}"))
    if pattern and not re.search(pattern, name):
        out.append(NameProblem(urn, name, f"{rule.cfn_property} {name!r} does not match AWS's pattern {pattern}"))
    return out


def check_k8s_name(urn: str, type_: str, logical: str, inputs: dict[str, Any]) -> list[NameProblem]:
    meta = inputs.get("metadata") or {}
    name = meta.get("name")
    if name == "[unknown]":
        return []
    if not isinstance(name, str):
        name = logical.lower() + "-" + "x" * (K8S_AUTONAME_SUFFIX - 1)
    max_length, pattern = DNS_LABEL if type_ == K8S_NAMESPACE else DNS_SUBDOMAIN
    out = []
    if len(name) > max_length or not re.match(pattern, name):
        out.append(NameProblem(urn, name, f"Kubernetes name {name!r} must be at most {max_length} characters of {pattern}"))
    for key, value in (meta.get("labels") or {}).items():
        if isinstance(value, str) and (len(value) > 63 or not re.match(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", value)):
            out.append(NameProblem(urn, value, f"label {key}={value!r} must be at most 63 characters, alphanumeric at both ends"))
    return out
