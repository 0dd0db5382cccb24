"""LoadBalancerController: the AWS Load Balancer Controller in one region's cluster.

It does one job here: keep each region's ALB target groups (components.ingress) filled with the pod
IPs of the stable and canary Services, through the `TargetGroupBinding` objects the Workload
creates. The ALB, its listener and target groups are Pulumi's; the controller creates no load
balancer of its own (no Service of type LoadBalancer, no Ingress in this program).

Its AWS identity is EKS Pod Identity, like every other pod identity of the cluster: a role only
the cluster's Pod Identity agent may assume, carrying the controller's official IAM policy,
vendored unchanged from the controller's repository at `CONTROLLER_VERSION`
(`components/data/aws-load-balancer-controller-iam-policy.json`, docs/install/iam_policy.json at
commit 11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4). Upgrade the chart and the policy together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.policydocs import pod_identity_trust_policy

CONTROLLER_VERSION = "v3.5.0"  # the controller release the IAM policy was taken from
CHART = "aws-load-balancer-controller"
CHART_VERSION = "3.5.0"  # eks-charts chart version shipping CONTROLLER_VERSION
CHART_REPO = "https://aws.github.io/eks-charts"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
IAM_POLICY_FILE = Path(__file__).parent / "data" / "aws-load-balancer-controller-iam-policy.json"


def controller_iam_policy() -> str:
    """The controller's official policy document, as vendored (compact JSON)."""
    return json.dumps(json.loads(IAM_POLICY_FILE.read_text()), separators=(",", ":"))


def chart_values(*, cluster_name: str, region: str, vpc_id: str) -> dict:
    """Helm values: the cluster it serves, its region and VPC stated (no IMDS lookup from pods),
    and the service account the Pod Identity association names."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicaCount": 2,
    }


@dataclass(frozen=True, kw_only=True)
class LoadBalancerControllerArgs:
    region: str
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]


class LoadBalancerController(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    release: k8s.helm.v3.Release
    """Depend on this before creating TargetGroupBindings: the chart installs their CRD and webhook."""

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:cluster:LoadBalancerController", name, None, opts)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        role = aws.iam.Role(
            f"{name}-role",
            description=f"AWS Load Balancer Controller in {args.region} (EKS Pod Identity)",
            assume_role_policy=pulumi.Output.all(account_id, args.cluster_arn).apply(
                lambda v: pod_identity_trust_policy(v[0], v[1])
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.Policy(
            f"{name}-policy",
            description=f"AWS Load Balancer Controller {CONTROLLER_VERSION} (docs/install/iam_policy.json)",
            policy=controller_iam_policy(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy-attachment",
            role=role.name,
            policy_arn=policy.arn,
            opts=pulumi.ResourceOptions(parent=role),
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-identity",
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=role, depends_on=[attachment]),
        )
        values = pulumi.Output.all(args.cluster_name, args.vpc_id).apply(
            lambda v: chart_values(cluster_name=v[0], region=args.region, vpc_id=v[1])
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-chart",
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=NAMESPACE,
            values=values,
            # the controller must start with its credentials in place, or its first reconcile fails
            opts=pulumi.ResourceOptions(parent=self, depends_on=[association]),
        )
        self.role_arn = role.arn
        self.register_outputs({"role_arn": self.role_arn})
