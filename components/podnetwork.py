"""What every pod with an AWS identity must be able to reach, as NetworkPolicy egress rules.

A namespace fenced by a default deny must still let its pods resolve names (cluster DNS), fetch
their credentials (the EKS Pod Identity agent on the node: 169.254.170.23, fd00:ec2::23 on IPv6
clusters, TCP 80) and call AWS APIs on 443, both the VPC's interface endpoints (private addresses:
private DNS makes STS, Secrets Manager, ECR resolve to them) and the public endpoints (S3 through
its gateway endpoint, services without an interface endpoint). meridian.preflight.identity checks
every namespace of the plan against exactly these needs.
"""

from __future__ import annotations

from stackconfig.planning import plan_subnets

# Where every pod's credentials come from: the EKS Pod Identity agent on its node (link-local, HTTP).
POD_IDENTITY_AGENT = ("169.254.170.23/32", "fd00:ec2::23/128")
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def endpoint_cidrs(vpc_cidr: str) -> list[str]:
    """Where the interface endpoints live: the VPC's private tier (components.network puts them in
    the private subnets), every AZ slot of it, not the data or public tiers."""
    return plan_subnets(vpc_cidr, 4)["private"]


def essential_egress(vpc_cidr: str) -> list[dict]:
    """NetworkPolicy egress rules every pod with an AWS identity needs: cluster DNS, the Pod Identity
    agent, and AWS APIs on 443, through the VPC's interface endpoints (the private tier's addresses)
    or the public endpoints (S3 through its gateway endpoint included). The private tier also holds
    pod addresses: a pod there is reached on 443 only if its own namespace admits it (tenant
    namespaces admit the platform only, on the container port); the data and public tiers are not
    named, and the rules together never span every private range (tenant-namespace-guarded)."""
    return [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"to": [{"ipBlock": {"cidr": c}} for c in POD_IDENTITY_AGENT], "ports": [{"protocol": "TCP", "port": 80}]},
        {
            "to": [
                *({"ipBlock": {"cidr": c}} for c in endpoint_cidrs(vpc_cidr)),
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}},
            ],
            "ports": [{"protocol": "TCP", "port": 443}],
        },
    ]
