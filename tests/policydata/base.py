"""What every area builder shares: the stack's names, the pack config the tests run with, a builder
of plan-shaped resources, and the small mutations each area composes its failing cases from.

Resources are shaped like the plan JSON's `resources` (plus `propertyDependencies`), with the
camelCase inputs of pulumi-aws 7 / pulumi-kubernetes 4 that the program really sends.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

from components.admission import TenantAdmissionArgs, admission_policies, binding_spec
from meridian.engine.policy.catalog_examples import STACK, stack_tags, urn  # one URN and tag shape for both

ACCOUNT = "123456789012"
PRIMARY, DR = "us-east-1", "us-west-2"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the wire format's "known after apply"

# Per-stack settings the rules need, as policies/config/<stack>.json would carry them.
CONFIG = {
    "aws-resource-region-allowed": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "aws-replication-destination-allowed": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "aws-data-path-destination-in-zone": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "provider-account-and-endpoints-in-zone": {"allowedRegions": [PRIMARY, DR, "us-east-2"], "accountIds": [ACCOUNT]},
    "helm-release-allowlisted": {
        "allowedCharts": [
            {"chart": "aws-load-balancer-controller", "repo": "https://aws.github.io/eks-charts", "version": "3.5.0"}
        ]
    },
    "sns-subscription-endpoint-in-zone": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "rds-database-dr-member": {"drRegion": DR},
    "s3-bucket-access-logging": {
        "requireAccessLogs": True,
        "exemptBuckets": ["pool-replica-bucket", "api-lb-logs-bucket", "access-logs-bucket"],
    },
    "route53-failover-record-ready": {"drRegion": DR, "rtoTargetSeconds": 60, "propagationMarginSeconds": 10},
    "lb-target-group-health-checked": {"rtoTargetSeconds": 60},
    "resource-policy-principals-in-account": {"accountIds": [ACCOUNT], "organizationIds": ["o-meridian123"]},
    "backup-vault-lock-enabled": {"minRetentionDays": 14, "lockMode": "compliance"},
    "backup-plan-coverage": {"minRetentionDays": 35},
    "s3-lifecycle-keeps-retention": {"minRetentionDays": 35},
    "production-data-not-force-deletable": {"production": True},
    "budgets-limit-and-cap-enforced": {"stackCapUsd": 5000},
    "runtime-backstops-enforced": {
        "ownsAccountGuardrails": True,
        "regions": [PRIMARY, DR],
        "renderedSpecs": {  # what meridian policy --write-config generates, from the program's own specs
            name: {"policy": spec, "binding": binding_spec(name, spec)}
            for name, spec in admission_policies(
                TenantAdmissionArgs(tenant_label="meridian.io/tenant", namespace_prefix="t-")
            ).items()
        },
    },
    "eks-access-platform-roles-only": {
        "adminPrincipals": [f"arn:aws:iam::{ACCOUNT}:role/meridian-deploy"],
        "viewPrincipals": [f"arn:aws:iam::{ACCOUNT}:role/meridian-preview"],
    },
}

Resources = list[dict]
Mutation = Callable[[Resources], None]
Mutations = dict[str, list[tuple[str, Mutation]]]  # rule -> [(what the mutation does, mutation)]


def arn(service: str, region: str, rest: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{rest}"


class Builder:
    """Appends resources in registration order; AWS resources get the stack tags unless told otherwise."""

    def __init__(self) -> None:
        self.resources: Resources = []
        self.providers: dict[str, str] = {}

    def add(
        self,
        type_: str,
        name: str,
        inputs: dict,
        *,
        region: str | None = PRIMARY,
        provider: str | None = None,
        parent: str | None = None,
        deps: dict[str, list[str]] | None = None,
        tags: dict | bool | None = None,
    ) -> str:
        """Add a resource; `tags=False` for types that take none, a dict for tags of its own."""
        u = urn(type_, name)
        if type_.startswith("aws:") and tags is not False:
            inputs = {**inputs, "tags": tags if tags is not None else stack_tags(region or PRIMARY)}
        deps = deps or {}
        self.resources.append(
            {
                "urn": u,
                "type": type_,
                "name": name,
                "custom": True,
                "parent": parent or urn("pulumi:pulumi:Stack", f"meridian-{STACK}"),
                "provider": provider if provider is not None else (self.providers.get(region) if region else None),
                "inputs": inputs,
                "dependencies": sorted({d for ds in deps.values() for d in ds}),
                "propertyDependencies": deps,
            }
        )
        return u


K8S_NAME = "eks-k8s"
K8S = urn("pulumi:providers:kubernetes", K8S_NAME)


def stack_and_providers(b: Builder) -> None:
    """The root stack, one AWS provider per region and the cluster's kubernetes provider."""
    b.resources.append(
        {
            "urn": urn("pulumi:pulumi:Stack", f"meridian-{STACK}"),
            "type": "pulumi:pulumi:Stack",
            "name": f"meridian-{STACK}",
            "custom": False,
            "parent": None,
            "provider": None,
            "inputs": {},
            "dependencies": [],
            "propertyDependencies": {},
        }
    )
    for region in (PRIMARY, DR):
        # the dr provider carries the stack tags as default tags (what the program does): its resources
        # that set no tags of their own are tagged through it
        defaults = {"defaultTags": {"tags": stack_tags(region)}} if region == DR else {}
        b.providers[region] = b.add(
            "pulumi:providers:aws",
            region,
            {"region": region, "allowedAccountIds": [ACCOUNT], "skipCredentialsValidation": "false", **defaults},
            region=None,
            provider="",
        )
    # built from the cluster (cluster.py), as components.cluster builds it: the cluster's backstops go through it
    b.add(
        "pulumi:providers:kubernetes",
        K8S_NAME,
        {"kubeconfig": "{}", "enableServerSideApply": "true"},
        region=None,
        provider="",
        deps={"kubeconfig": [urn("aws:eks/cluster:Cluster", "eks")]},
    )


# --- mutations ----------------------------------------------------------------------------------


def find(resources: Resources, name: str) -> dict:
    return next(r for r in resources if r["name"] == name)


DELETE = object()


def set_input(name: str, path: str, value) -> Mutation:
    """Set (or with value=DELETE, remove) inputs.<path> of the resource named `name`."""

    def mutate(resources: Resources) -> None:
        node = find(resources, name)["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        if value is DELETE:
            if isinstance(node, list):
                node.pop(int(last))
            else:
                node.pop(last, None)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def move_region(name: str, region: str) -> Mutation:
    return set_input(name, "region", region)


def drop(*names: str) -> Mutation:
    def mutate(resources: Resources) -> None:
        resources[:] = [r for r in resources if r["name"] not in names]

    return mutate


def add_statement(name: str, statement: dict, field: str = "policy") -> Mutation:
    """Add a statement to the policy document of resource `name`."""

    def mutate(resources: Resources) -> None:
        inputs = find(resources, name)["inputs"]
        doc = json.loads(inputs[field]) if field in inputs else {"Version": "2012-10-17", "Statement": []}
        doc["Statement"].append(statement)
        inputs[field] = json.dumps(doc)

    return mutate


def together(*steps: Mutation) -> Mutation:
    def mutate(resources: Resources) -> None:
        for step in steps:
            step(resources)

    return mutate


def add(resource: dict) -> Mutation:
    def mutate(resources: Resources) -> None:
        resources.append(copy.deepcopy(resource))

    return mutate


def resource(type_: str, name: str, inputs: dict, *, region: str = PRIMARY, deps: dict | None = None) -> dict:
    """A resource to add, under the given region's provider."""
    return {
        "urn": urn(type_, name),
        "type": type_,
        "name": name,
        "parent": None,
        "provider": urn("pulumi:providers:aws", region),
        "inputs": inputs,
        "dependencies": sorted({d for ds in (deps or {}).values() for d in ds}),
        "propertyDependencies": deps or {},
    }
