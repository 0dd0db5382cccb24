"""Realistic mock outputs per resource type: the one table the offline engine and tests share.

What the program reads back from a resource (ids, ARNs, names, endpoints) must be known under
mocks, or every input built from it silently becomes unknown. Each entry below returns the
outputs AWS would report; inputs are echoed back as state like the real provider does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.runtime.rpc import _special_secret_sig as SECRET_SIG  # noqa: N812
from pulumi.runtime.rpc import _special_sig_key as SIG_KEY  # noqa: N812 - the wire format's own names

ACCOUNT_ID = "123456789012"

Outputs = dict[str, Any]


def _digest(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _physical(name: str) -> str:
    """Pulumi auto-naming: the logical name plus a random-looking 7-character suffix."""
    return f"{name}-{_digest(name, n=7)}"


def _arn(service: str, region: str, resource: str, *, global_service: bool = False) -> str:
    return f"arn:aws:{service}:{'' if global_service else region}:{ACCOUNT_ID}:{resource}"


def _named(
    service: str, path: str, key: str = "name", global_service: bool = False
) -> Callable[[str, Outputs, str, str], Outputs]:
    """Types whose id is their (auto-)name and whose ARN embeds it."""

    def outputs(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
        physical = inputs.get(key) or _physical(name)
        return {"id": physical, key: physical, "arn": _arn(service, region, path.format(physical), global_service=global_service)}

    return outputs


def _ec2(
    prefix: str, kind: str | None = None, **extra: Callable[[str, Outputs, str, str], Any]
) -> Callable[[str, Outputs, str, str], Outputs]:
    """EC2-style ids (`vpc-0abc...`), with an ARN when the type has one."""

    def outputs(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
        ident = f"{prefix}-{rid}"
        out: Outputs = {"id": ident}
        if kind:
            out["arn"] = _arn("ec2", region, f"{kind}/{ident}")
        out.update({k: fn(name, inputs, region, ident) for k, fn in extra.items()})
        return out

    return outputs


def _uuid(rid: str) -> str:
    """A UUID-shaped id (AWS Backup plans and selections), stable per resource."""
    return f"{rid[:8]}-{rid[8:12]}-4{rid[12:15]}-8{rid[:3]}-{rid[:12]}"


def _kms_key(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    key_id = f"{rid[:8]}-{rid[8:12]}-4{rid[13:16]}-a{rid[:3]}-{rid[:12]}"
    return {"id": key_id, "keyId": key_id, "arn": _arn("kms", region, f"key/{key_id}")}


def _kms_alias(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    alias = inputs.get("name") or f"alias/{_physical(name)}"
    return {"id": alias, "name": alias, "arn": _arn("kms", region, alias)}


def _iam_role(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    """Role ARNs carry the role's path (`arn:aws:iam::<account>:role/meridian/tenants/<name>`)."""
    physical = inputs.get("name") or _physical(name)
    path = inputs.get("path") or "/"
    return {
        "id": physical,
        "name": physical,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:role{path}{physical}",
        "uniqueId": f"AROA{rid[:17].upper()}",
    }


def _route53_record(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    """The provider's id is ZONE_NAME_TYPE, plus _SETIDENTIFIER for routed records (PRIMARY and SECONDARY differ)."""
    parts = [str(inputs.get("zoneId")), str(inputs.get("name")), str(inputs.get("type"))]
    if inputs.get("setIdentifier"):
        parts.append(str(inputs["setIdentifier"]))
    return {"id": "_".join(parts), "fqdn": str(inputs.get("name", "")).rstrip(".")}


def _log_group(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    physical = inputs.get("name") or _physical(name)
    return {"id": physical, "name": physical, "arn": _arn("logs", region, f"log-group:{physical}")}


def _eks_cluster(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    cluster = inputs.get("name") or _physical(name)
    oidc_id = rid.upper()[:16].ljust(32, "0")
    return {
        "id": cluster,
        "name": cluster,
        "arn": _arn("eks", region, f"cluster/{cluster}"),
        "endpoint": f"https://{oidc_id}.gr7.{region}.eks.amazonaws.com",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1PQ0sKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{oidc_id}"}]}],
        "vpcConfig": {**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{rid}", "vpcId": f"vpc-{_digest(rid)}"},
        "status": "ACTIVE",
        "platformVersion": "eks.1",
    }


def _oidc_provider(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    url = str(inputs.get("url", f"oidc.eks.{region}.amazonaws.com/id/{rid}")).removeprefix("https://")
    arn = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}"
    return {"id": arn, "arn": arn}


def _rds_cluster(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    ident = inputs.get("clusterIdentifier") or _physical(name)
    host = f"{ident}.cluster-{rid[:12]}.{region}.rds.amazonaws.com"
    return {
        "id": ident,
        "clusterIdentifier": ident,
        "arn": _arn("rds", region, f"cluster:{ident}"),
        "endpoint": host,
        "readerEndpoint": host.replace(".cluster-", ".cluster-ro-"),
        "port": 5432,
        "clusterResourceId": f"cluster-{rid.upper()}",
    }


def _rds_instance(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    ident = inputs.get("identifier") or _physical(name)
    host = f"{ident}.{rid[:12]}.{region}.rds.amazonaws.com"
    return {
        "id": ident,
        "identifier": ident,
        "arn": _arn("rds", region, f"db:{ident}"),
        "address": host,
        "endpoint": f"{host}:5432",
        "port": 5432,
        "resourceId": f"db-{rid.upper()}",
    }


def _global_cluster(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    ident = inputs.get("globalClusterIdentifier") or _physical(name)
    return {
        "id": ident,
        "arn": f"arn:aws:rds::{ACCOUNT_ID}:global-cluster:{ident}",
        "endpoint": f"{ident}.global-{rid[:12]}.global.rds.amazonaws.com",
        "globalClusterResourceId": f"cluster-{rid}",
    }


def _acm_certificate(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    domain = str(inputs.get("domainName", "example.com"))
    names = [domain, *[str(n) for n in inputs.get("subjectAlternativeNames") or [] if n != domain]]

    def option(name: str) -> dict:
        token = _digest(name, n=32)  # ACM's validation record is the same for a name in every region
        return {
            "domainName": name,
            "resourceRecordName": f"_{token}.{name}.",
            "resourceRecordType": "CNAME",
            "resourceRecordValue": f"_{_digest(token, n=32)}.acm-validations.aws.",
        }

    # ACM lists the options in no order a program may rely on: reversed, so code that takes the first fails here too
    return {
        "id": _arn("acm", region, f"certificate/{rid}"),
        "arn": _arn("acm", region, f"certificate/{rid}"),
        "domainValidationOptions": [option(n) for n in reversed(names)],
    }


def _k8s(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    """Kubernetes objects: auto-named metadata.name like the provider, LoadBalancer status for Services."""
    metadata = dict(inputs.get("metadata") or {})
    metadata.setdefault("name", _physical(name))
    namespace = metadata.get("namespace")
    out: Outputs = {"id": f"{namespace}/{metadata['name']}" if namespace else metadata["name"], "metadata": metadata}
    if (inputs.get("spec") or {}).get("type") == "LoadBalancer":
        out["status"] = {"loadBalancer": {"ingress": [{"hostname": f"a{rid}-{rid[:8]}.elb.{region}.amazonaws.com"}]}}
    return out


# Canonical hosted zone ids of ALBs per region (the ELB endpoints table); other regions get a stand-in.
ALB_ZONE_IDS = {
    "us-east-1": "Z35SXDOTRQ7X7K",
    "us-west-2": "Z1H1FL5HABSF5",
    "eu-west-1": "Z32O12XQLNTSW2",
    "eu-central-1": "Z215JYRZR1TBD5",
}


def _load_balancer(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    physical = inputs.get("name") or _physical(name)
    kind = "app" if inputs.get("loadBalancerType", "application") == "application" else "net"
    suffix = f"{kind}/{physical}/{rid[:16]}"
    return {
        "id": _arn("elasticloadbalancing", region, f"loadbalancer/{suffix}"),
        "arn": _arn("elasticloadbalancing", region, f"loadbalancer/{suffix}"),
        "arnSuffix": suffix,
        "name": physical,
        "dnsName": f"{physical}-{int(rid[:8], 16)}.{region}.elb.amazonaws.com",
        "zoneId": ALB_ZONE_IDS.get(region, f"Z{rid.upper()[:13]}"),
    }


def _target_group(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    physical = inputs.get("name") or _physical(name)
    suffix = f"targetgroup/{physical}/{rid[:16]}"
    arn = _arn("elasticloadbalancing", region, suffix)
    return {"id": arn, "arn": arn, "arnSuffix": suffix, "name": physical}


def _listener(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    lb = str(inputs.get("loadBalancerArn") or _arn("elasticloadbalancing", region, "loadbalancer/app/unknown/0"))
    arn = lb.replace(":loadbalancer/", ":listener/", 1) + f"/{rid[:16]}"
    return {"id": arn, "arn": arn}


# type token -> outputs(name, inputs, region, deterministic id) ; the one table.
OUTPUTS: dict[str, Callable[[str, Outputs, str, str], Outputs]] = {
    "aws:ec2/vpc:Vpc": _ec2(
        "vpc",
        "vpc",
        defaultSecurityGroupId=lambda n, i, r, x: f"sg-{_digest(x)}",
        mainRouteTableId=lambda n, i, r, x: f"rtb-{_digest(x)}",
        defaultNetworkAclId=lambda n, i, r, x: f"acl-{_digest(x)}",
    ),
    "aws:ec2/subnet:Subnet": _ec2("subnet", "subnet"),
    "aws:ec2/launchTemplate:LaunchTemplate": _ec2(
        "lt", "launch-template", latestVersion=lambda n, i, r, x: 1, defaultVersion=lambda n, i, r, x: 1
    ),
    "aws:ec2/internetGateway:InternetGateway": _ec2("igw", "internet-gateway"),
    "aws:ec2/eip:Eip": _ec2(
        "eipalloc", None, allocationId=lambda n, i, r, x: x, publicIp=lambda n, i, r, x: f"203.0.113.{int(x[-2:], 16) % 250 + 1}"
    ),
    "aws:ec2/natGateway:NatGateway": _ec2("nat", "natgateway"),
    "aws:ec2/routeTable:RouteTable": _ec2("rtb", "route-table"),
    "aws:ec2/route:Route": _ec2("r"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _ec2("rtbassoc"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _ec2("vpce", "vpc-endpoint", prefixListId=lambda n, i, r, x: f"pl-{_digest(x, n=8)}"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _ec2("sg", "security-group"),
    "aws:ec2/securityGroup:SecurityGroup": _ec2("sg", "security-group"),
    "aws:ec2/flowLog:FlowLog": _ec2("fl", "vpc-flow-log"),
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:iam/role:Role": _iam_role,
    "aws:iam/policy:Policy": _named("iam", "policy/{}", global_service=True),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": lambda n, i, r, x: {"id": f"{i.get('role', 'role')}-{x}"},
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc_provider,
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": lambda n, i, r, x: {
        "id": f"{i.get('clusterName')}:{_physical(n)}",
        "nodeGroupName": _physical(n),
        "status": "ACTIVE",
        "arn": _arn("eks", r, f"nodegroup/{i.get('clusterName')}/{_physical(n)}/{x}"),
    },
    "aws:rds/globalCluster:GlobalCluster": _global_cluster,
    "aws:rds/cluster:Cluster": _rds_cluster,
    "aws:rds/clusterInstance:ClusterInstance": _rds_instance,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:rds/subnetGroup:SubnetGroup": _named("rds", "subgrp:{}"),
    "aws:rds/parameterGroup:ParameterGroup": _named("rds", "pg:{}"),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": _named("rds", "cluster-pg:{}"),
    "aws:route53/zone:Zone": lambda n, i, r, x: {
        "id": f"Z{x.upper()[:13]}",
        "zoneId": f"Z{x.upper()[:13]}",
        "arn": f"arn:aws:route53:::hostedzone/Z{x.upper()[:13]}",
        "nameServers": [f"ns-{k}.awsdns-{k:02d}.net" for k in (1, 2, 3, 4)],
    },
    "aws:route53/healthCheck:HealthCheck": lambda n, i, r, x: {
        "id": f"{x[:8]}-{x[8:12]}-4{x[12:15]}-8{x[:3]}-{x[:12]}",
        "arn": f"arn:aws:route53:::healthcheck/{x}",
    },
    "aws:route53/record:Record": _route53_record,
    # Secrets Manager's id is the ARN, whose name gets a 6-character suffix; a replica keeps both
    "aws:secretsmanager/secret:Secret": lambda n, i, r, x: {
        "id": _arn("secretsmanager", r, f"secret:{i.get('name') or _physical(n)}-{x[:6]}"),
        "arn": _arn("secretsmanager", r, f"secret:{i.get('name') or _physical(n)}-{x[:6]}"),
        "name": i.get("name") or _physical(n),
    },
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": lambda n, i, r, x: {
        "id": _arn("cloudformation", r, f"stack/serverlessrepo-{_physical(n)}/{x}"),
        "outputs": {
            "RotationLambdaARN": _arn("lambda", r, f"function:{(i.get('parameters') or {}).get('functionName', _physical(n))}")
        },
    },
    "aws:acm/certificate:Certificate": _acm_certificate,
    "aws:acm/certificateValidation:CertificateValidation": lambda n, i, r, x: {"id": str(i.get("certificateArn"))},
    "aws:s3/bucket:Bucket": lambda n, i, r, x: {
        "id": i.get("bucket") or _physical(n),
        "bucket": i.get("bucket") or _physical(n),
        "arn": f"arn:aws:s3:::{i.get('bucket') or _physical(n)}",
        "region": r,
        "bucketRegionalDomainName": f"{i.get('bucket') or _physical(n)}.s3.{r}.amazonaws.com",
    },
    "aws:backup/vault:Vault": _named("backup", "backup-vault:{}"),
    "aws:backup/plan:Plan": lambda n, i, r, x: {
        "id": _uuid(x),
        "arn": _arn("backup", r, f"backup-plan:{_uuid(x)}"),
        "version": _digest(x, n=32),
    },
    "aws:backup/selection:Selection": lambda n, i, r, x: {"id": _uuid(x)},
    "aws:fis/experimentTemplate:ExperimentTemplate": lambda n, i, r, x: {
        "id": f"EXT{x.upper()[:14]}",
        "arn": _arn("fis", r, f"experiment-template/EXT{x.upper()[:14]}"),
    },
    "aws:budgets/budget:Budget": lambda n, i, r, x: {
        "id": f"{ACCOUNT_ID}:{i.get('name') or _physical(n)}",
        "name": i.get("name") or _physical(n),
        "arn": f"arn:aws:budgets::{ACCOUNT_ID}:budget/{i.get('name') or _physical(n)}",
    },
    "aws:budgets/budgetAction:BudgetAction": lambda n, i, r, x: {
        "id": f"{ACCOUNT_ID}:{x}:{i.get('budgetName')}",
        "actionId": x,
        "arn": f"arn:aws:budgets::{ACCOUNT_ID}:budget/{i.get('budgetName')}/action/{x}",
    },
    "aws:sns/topicPolicy:TopicPolicy": lambda n, i, r, x: {"id": str(i.get("arn"))},
    "aws:sns/topic:Topic": lambda n, i, r, x: {
        "id": _arn("sns", r, _physical(n)),
        "arn": _arn("sns", r, _physical(n)),
        "name": _physical(n),
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": lambda n, i, r, x: {
        "id": _physical(n),
        "arn": _arn("cloudwatch", r, f"alarm:{_physical(n)}"),
    },
    "random:index/randomId:RandomId": lambda n, i, r, x: {
        "id": _digest(x, n=2 * int(i.get("byteLength") or 4)),
        "hex": _digest(x, n=2 * int(i.get("byteLength") or 4)),
        "dec": str(int(_digest(x, n=2 * int(i.get("byteLength") or 4)), 16)),
    },
    "random:index/randomPassword:RandomPassword": lambda n, i, r, x: {
        "id": "none",
        "result": f"Mock-{x}!{_digest(x, n=14)}",
        "bcryptHash": "$2a$10$mock",
    },
    "aws:ecr/repository:Repository": lambda n, i, r, x: {
        "id": i.get("name") or _physical(n),
        "name": i.get("name") or _physical(n),
        "registryId": ACCOUNT_ID,
        "arn": _arn("ecr", r, f"repository/{i.get('name') or _physical(n)}"),
        "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{r}.amazonaws.com/{i.get('name') or _physical(n)}",
    },
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": lambda n, i, r, x: {"id": ACCOUNT_ID, "registryId": ACCOUNT_ID},
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:lb/listener:Listener": _listener,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": lambda n, i, r, x: {
        "id": f"sgr-{x}",
        "arn": _arn("ec2", r, f"security-group-rule/sgr-{x}"),
        "securityGroupRuleId": f"sgr-{x}",
    },
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": lambda n, i, r, x: {
        "id": f"{i.get('clusterName')},a-{x}",
        "associationId": f"a-{x}",
        "associationArn": _arn("eks", r, f"podidentityassociation/{i.get('clusterName')}/a-{x}"),
    },
    "aws:iam/rolePolicy:RolePolicy": lambda n, i, r, x: {"id": f"{i.get('role', 'role')}:{_physical(n)}", "name": _physical(n)},
    "aws:lambda/function:Function": lambda n, i, r, x: {
        **_named("lambda", "function:{}")(n, i, r, x),
        "invokeArn": f"arn:aws:apigateway:{r}:lambda:path/2015-03-31/functions/{_named('lambda', 'function:{}')(n, i, r, x)['arn']}/invocations",
        "qualifiedArn": _named("lambda", "function:{}")(n, i, r, x)["arn"] + ":$LATEST",
    },
    "aws:lambda/permission:Permission": lambda n, i, r, x: {"id": i.get("statementId") or _physical(n)},
    "aws:cloudwatch/eventRule:EventRule": _named("events", "rule/{}"),
    "aws:cloudwatch/eventTarget:EventTarget": lambda n, i, r, x: {
        "id": f"{i.get('rule')}-{_physical(n)}",
        "targetId": _physical(n),
    },
}

# the ELB accounts AWS documents for log delivery in regions opened before August 2022
ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-central-1": "054676820928",
    "eu-north-1": "897822967062",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ap-south-1": "718504428378",
}

# invoke token -> result(args, region)
INVOKES: dict[str, Callable[[Outputs, str], Outputs]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda a, r: {
        "names": [f"{r}{s}" for s in "abcd"],
        "zoneIds": [f"{r[:2]}{r.split('-')[1][0]}{r[-1]}-az{k}" for k in range(1, 5)],
        "id": r,
    },
    "aws:index/getCallerIdentity:getCallerIdentity": lambda a, r: {
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci",
        "userId": "AIDAEXAMPLE",
        "id": ACCOUNT_ID,
    },
    "aws:index/getPartition:getPartition": lambda a, r: {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
    "aws:index/getRegion:getRegion": lambda a, r: {"name": r, "region": r, "id": r},
    # the region's Elastic Load Balancing account (what an ALB log bucket's policy admits)
    "aws:elb/getServiceAccount:getServiceAccount": lambda a, r: {
        "id": ELB_ACCOUNTS.get(r, "000000000000"),
        "arn": f"arn:aws:iam::{ELB_ACCOUNTS.get(r, '000000000000')}:root",
        "region": r,
    },
}


def kubeconfig_region(kubeconfig: Any) -> str | None:
    """The region a kubernetes provider talks to, from its `aws eks get-token --region` exec args."""
    try:
        exec_args = json.loads(kubeconfig)["users"][0]["user"]["exec"]["args"]
        return exec_args[exec_args.index("--region") + 1]
    except (TypeError, ValueError, KeyError, IndexError):
        return None


class MockConfigError(Exception):
    """The program placed a resource where no region can be determined (the engine would refuse it too)."""


class UnknownStackReference(Exception):
    """The program reads a stack the engine was not given the outputs of."""


STACK_REFERENCE = "pulumi:pulumi:StackReference"


def stack_reference_state(name: str, outputs: Outputs) -> Outputs:
    """What the engine's builtin provider reads for a `pulumi:pulumi:StackReference` (its id the
    stack's name): the stack's outputs as the referenced stack's state holds them (secrets still
    secret, wire-encoded) and the names of the outputs holding a secret, sorted."""
    return {"name": name, "outputs": outputs, "secretOutputNames": sorted(k for k, v in outputs.items() if _holds_secret(v))}


def _holds_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get(SIG_KEY) == SECRET_SIG or any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


class MeridianMocks(pulumi.runtime.Mocks):
    """Mocks that answer like AWS would, per region of the resource's provider.

    A resource's region comes from its own `region` input, else its provider's. An AWS provider
    without a region, or an AWS resource under the default provider while `aws:region` is not set,
    is an error: the real engine would fail at `up` (no region), and silently assuming us-east-1
    would make every residency check pass or fail for the wrong reason."""

    def __init__(
        self, default_region: str | None = None, first_preview: bool = False, stack_outputs: Mapping[str, Outputs] | None = None
    ) -> None:
        self._provider_region: dict[str, str] = {}  # provider id -> region
        # fully qualified stack name (`organization/meridian/us`) -> its outputs, wire-encoded
        # (unknowns as the engine's sentinel, secrets as secret values): what a StackReference reads
        self._stack_outputs = dict(stack_outputs or {})
        self.stacks_read: list[str] = []  # every stack a StackReference of the program named, in order
        self._default_region = default_region
        # A first `pulumi preview`: nothing exists yet, so every computed output (ids, ARNs,
        # endpoints) of a resource being created is unknown; only its own inputs are known.
        self._first_preview = first_preview

    def region_of(self, provider_ref: str | None, inputs: Outputs, what: str) -> str | None:
        if isinstance(inputs.get("region"), str):
            return inputs["region"]
        if provider_ref:
            pid = provider_ref.rsplit("::", 1)[-1]
            if pid in self._provider_region:
                return self._provider_region[pid]
            if "::pulumi:providers:aws::" not in provider_ref:
                return None  # another package's provider (kubernetes): regionless objects
            raise MockConfigError(f"{what}: its AWS provider {provider_ref.rsplit('::', 2)[-2]} has no region")
        if self._default_region:
            return self._default_region
        if what.startswith("aws:"):
            raise MockConfigError(
                f"{what}: no provider and no `aws:region` in the stack config: set one (the default provider has no region)"
            )
        return None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ.startswith("pulumi:providers:"):
            pid = f"provider-{_digest(args.typ, args.name)}"
            region = args.inputs.get("region") or kubeconfig_region(args.inputs.get("kubeconfig"))
            if isinstance(region, str) and region:
                self._provider_region[pid] = region
            elif args.typ == "pulumi:providers:aws":
                raise MockConfigError(f"AWS provider {args.name} has no `region`: give every provider its region explicitly")
            return pid, dict(args.inputs)
        if args.typ == STACK_REFERENCE:  # a read (the SDK's mocks pass reads as custom=False)
            name = str(args.inputs.get("name") or args.resource_id)
            self.stacks_read.append(name)
            if name not in self._stack_outputs:
                given = ", ".join(sorted(self._stack_outputs)) or "none"
                raise UnknownStackReference(
                    f"the program reads stack {name} (StackReference {args.name}): preview it first and pass its outputs "
                    f"(stacks given: {given})"
                )
            return name, stack_reference_state(name, self._stack_outputs[name])
        if not args.custom:
            return "", {}
        region = self.region_of(args.provider, args.inputs, f"{args.typ} {args.name}") or ""
        if self._first_preview:
            return "", dict(args.inputs)  # an empty id and no invented outputs: the SDK makes them unknown
        rid = _digest(args.typ, args.name, region)
        factory = OUTPUTS.get(args.typ) or (_k8s if args.typ.startswith("kubernetes:") else None)
        outputs = factory(args.name, args.inputs, region, rid) if factory else {"id": f"{args.name}-{rid[:8]}"}
        return outputs.pop("id"), {**args.inputs, **outputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        factory = INVOKES.get(args.token)
        if factory is None:
            return {}
        return factory(args.args, self.region_of(args.provider, args.args, args.token) or "")
