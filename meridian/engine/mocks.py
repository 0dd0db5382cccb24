"""Realistic mock outputs per resource type: the one table the offline engine and tests share.

What the program reads back from a resource (ids, ARNs, names, endpoints) must be known under
mocks, or every input built from it silently becomes unknown. Each entry below returns the
outputs AWS would report; inputs are echoed back as state like the real provider does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"
_UNKNOWN_REGION = "us-east-1"

Outputs = dict[str, Any]


def _digest(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _physical(name: str) -> str:
    """Pulumi auto-naming: the logical name plus a random-looking 7-character suffix."""
    return f"{name}-{_digest(name, n=7)}"


def _arn(service: str, region: str, resource: str, *, global_service: bool = False) -> str:
    return f"arn:aws:{service}:{'' if global_service else region}:{ACCOUNT_ID}:{resource}"


def _named(service: str, path: str, key: str = "name", global_service: bool = False) -> Callable[[str, Outputs, str, str], Outputs]:
    """Types whose id is their (auto-)name and whose ARN embeds it."""

    def outputs(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
        physical = inputs.get(key) or _physical(name)
        return {"id": physical, key: physical, "arn": _arn(service, region, path.format(physical), global_service=global_service)}

    return outputs


def _ec2(prefix: str, kind: str | None = None, **extra: Callable[[str, Outputs, str, str], Any]) -> Callable[[str, Outputs, str, str], Outputs]:
    """EC2-style ids (`vpc-0abc...`), with an ARN when the type has one."""

    def outputs(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
        ident = f"{prefix}-{rid}"
        out: Outputs = {"id": ident}
        if kind:
            out["arn"] = _arn("ec2", region, f"{kind}/{ident}")
        out.update({k: fn(name, inputs, region, ident) for k, fn in extra.items()})
        return out

    return outputs


def _kms_key(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    key_id = f"{rid[:8]}-{rid[8:12]}-4{rid[13:16]}-a{rid[:3]}-{rid[:12]}"
    return {"id": key_id, "keyId": key_id, "arn": _arn("kms", region, f"key/{key_id}")}


def _kms_alias(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    alias = inputs.get("name") or f"alias/{_physical(name)}"
    return {"id": alias, "name": alias, "arn": _arn("kms", region, alias)}


def _log_group(name: str, inputs: Outputs, region: str, rid: str) -> Outputs:
    physical = inputs.get("name") or _physical(name)
    return {"id": physical, "name": physical, "arn": _arn("logs", region, f"log-group:{physical}")}


# type token -> outputs(name, inputs, region, deterministic id) ; the one table.
OUTPUTS: dict[str, Callable[[str, Outputs, str, str], Outputs]] = {
    "aws:ec2/vpc:Vpc": _ec2("vpc", "vpc", defaultSecurityGroupId=lambda n, i, r, x: f"sg-{_digest(x)}",
                            mainRouteTableId=lambda n, i, r, x: f"rtb-{_digest(x)}",
                            defaultNetworkAclId=lambda n, i, r, x: f"acl-{_digest(x)}"),
    "aws:ec2/subnet:Subnet": _ec2("subnet", "subnet"),
    "aws:ec2/internetGateway:InternetGateway": _ec2("igw", "internet-gateway"),
    "aws:ec2/eip:Eip": _ec2("eipalloc", None, allocationId=lambda n, i, r, x: x,
                            publicIp=lambda n, i, r, x: f"203.0.113.{int(x[-2:], 16) % 250 + 1}"),
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
    "aws:iam/role:Role": _named("iam", "role/{}", global_service=True),
    "aws:iam/policy:Policy": _named("iam", "policy/{}", global_service=True),
    "aws:iam/rolePolicy:RolePolicy": lambda n, i, r, x: {"id": f"{i.get('role', 'role')}:{_physical(n)}", "name": _physical(n)},
}

# invoke token -> result(args, region)
INVOKES: dict[str, Callable[[Outputs, str], Outputs]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": lambda a, r: {
        "names": [f"{r}{s}" for s in "abcd"],
        "zoneIds": [f"{r[:2]}{r.split('-')[1][0]}{r[-1]}-az{k}" for k in range(1, 5)],
        "id": r,
    },
    "aws:index/getCallerIdentity:getCallerIdentity": lambda a, r: {
        "accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci", "userId": "AIDAEXAMPLE", "id": ACCOUNT_ID,
    },
    "aws:index/getPartition:getPartition": lambda a, r: {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
    "aws:index/getRegion:getRegion": lambda a, r: {"name": r, "region": r, "id": r},
}


class MeridianMocks(pulumi.runtime.Mocks):
    """Mocks that answer like AWS would, per region of the resource's provider."""

    def __init__(self) -> None:
        self._provider_region: dict[str, str] = {}  # provider id -> region

    def region_of(self, provider_ref: str | None, inputs: Outputs) -> str:
        if isinstance(inputs.get("region"), str):
            return inputs["region"]
        if provider_ref:
            return self._provider_region.get(provider_ref.rsplit("::", 1)[-1], _UNKNOWN_REGION)
        return _UNKNOWN_REGION

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ.startswith("pulumi:providers:"):
            pid = f"provider-{_digest(args.typ, args.name)}"
            if isinstance(args.inputs.get("region"), str):
                self._provider_region[pid] = args.inputs["region"]
            return pid, dict(args.inputs)
        if not args.custom:
            return "", {}
        region = self.region_of(args.provider, args.inputs)
        rid = _digest(args.typ, args.name, region)
        factory = OUTPUTS.get(args.typ)
        outputs = factory(args.name, args.inputs, region, rid) if factory else {"id": f"{args.name}-{rid[:8]}"}
        return outputs.pop("id"), {**args.inputs, **outputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        factory = INVOKES.get(args.token)
        if factory is None:
            return {}
        return factory(args.args, self.region_of(args.provider, args.args))
