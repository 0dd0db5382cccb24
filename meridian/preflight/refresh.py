"""What `pulumi preview --refresh` reads for each resource type, and the plan and drift role that
may read it (`.github/workflows/drift.yml` and `deploy.yml`'s plan job, `AWS_PLAN_ROLE_ARN`).

A refresh reads every resource back through its provider: the AWS provider with the role's
credentials, the Kubernetes provider as the role's EKS access entry, random from state alone. The
role is AWS's managed `ReadOnlyAccess` (the Describe/Get/List reads of every service) plus
`REFRESH_EXTRAS`, the reads a refresh makes that ReadOnlyAccess withholds because they return
data rather than configuration: a SecretVersion's refresh calls GetSecretValue (the provider
compares the stored value) and the secret's customer key must decrypt it. The role changes nothing
(no Put/Create/Update/Delete), and the secret values it reads are those the state already holds.

Every type of the plan must be in `REFRESH_READS`: a new type stops preflight until someone has
decided what its refresh reads (the `refresh` check), so the drift job never meets AccessDenied
first on AWS.

Sources: pulumi-aws 7 `secretsmanager.SecretVersion` (reads `secret_string` back); Secrets Manager
GetSecretValue needs `secretsmanager:GetSecretValue` and `kms:Decrypt` on a customer key
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html);
`ReadOnlyAccess` (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/ReadOnlyAccess.html)
grants no `secretsmanager:GetSecretValue` and no `kms:Decrypt`; EKS `AmazonEKSAdminViewPolicy` lists
and reads every Kubernetes object, Secrets included (Helm releases are stored in Secrets).
"""

from __future__ import annotations

import json
from typing import Literal

from meridian.preflight.context import CheckResult, Context, Finding

Grant = Literal["ReadOnlyAccess", "eks-view", "state"]

READ_ONLY_ACCESS = "arn:aws:iam::aws:policy/ReadOnlyAccess"

_AWS_TYPES = """
accessanalyzer/analyzer:Analyzer acm/certificate:Certificate acm/certificateValidation:CertificateValidation
backup/plan:Plan backup/selection:Selection backup/vault:Vault backup/vaultLockConfiguration:VaultLockConfiguration
budgets/budget:Budget budgets/budgetAction:BudgetAction cloudwatch/eventRule:EventRule cloudwatch/eventTarget:EventTarget
cloudwatch/logGroup:LogGroup cloudwatch/metricAlarm:MetricAlarm lambda/function:Function lambda/permission:Permission
costexplorer/costAllocationTag:CostAllocationTag ec2/defaultSecurityGroup:DefaultSecurityGroup ec2/eip:Eip
ec2/flowLog:FlowLog ec2/internetGateway:InternetGateway ec2/launchTemplate:LaunchTemplate ec2/natGateway:NatGateway
ec2/route:Route ec2/routeTable:RouteTable ec2/routeTableAssociation:RouteTableAssociation
ec2/securityGroup:SecurityGroup ec2/subnet:Subnet ec2/vpc:Vpc ec2/vpcEndpoint:VpcEndpoint
ecr/replicationConfiguration:ReplicationConfiguration ecr/repository:Repository eks/accessEntry:AccessEntry
eks/accessPolicyAssociation:AccessPolicyAssociation eks/addon:Addon eks/cluster:Cluster eks/nodeGroup:NodeGroup
eks/podIdentityAssociation:PodIdentityAssociation fis/experimentTemplate:ExperimentTemplate
iam/openIdConnectProvider:OpenIdConnectProvider iam/policy:Policy iam/role:Role iam/rolePolicy:RolePolicy
iam/rolePolicyAttachment:RolePolicyAttachment kms/alias:Alias kms/key:Key lb/listener:Listener
lb/loadBalancer:LoadBalancer lb/targetGroup:TargetGroup rds/cluster:Cluster rds/clusterInstance:ClusterInstance
rds/clusterParameterGroup:ClusterParameterGroup rds/globalCluster:GlobalCluster rds/instance:Instance
rds/parameterGroup:ParameterGroup rds/subnetGroup:SubnetGroup route53/healthCheck:HealthCheck route53/record:Record
s3/accountPublicAccessBlock:AccountPublicAccessBlock s3/bucket:Bucket
s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration s3/bucketOwnershipControls:BucketOwnershipControls
s3/bucketPolicy:BucketPolicy s3/bucketPublicAccessBlock:BucketPublicAccessBlock
s3/bucketReplicationConfig:BucketReplicationConfig
s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration s3/bucketVersioning:BucketVersioning
secretsmanager/secret:Secret secretsmanager/secretRotation:SecretRotation secretsmanager/secretVersion:SecretVersion
serverlessrepository/cloudFormationStack:CloudFormationStack sns/topic:Topic sns/topicPolicy:TopicPolicy
sns/topicSubscription:TopicSubscription vpc/securityGroupIngressRule:SecurityGroupIngressRule
"""
_KUBERNETES_TYPES = """
admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding
apps/v1:Deployment batch/v1:Job core/v1:LimitRange core/v1:Namespace core/v1:ResourceQuota core/v1:Secret
core/v1:Service core/v1:ServiceAccount elbv2.k8s.aws/v1beta1:TargetGroupBinding helm.sh/v3:Release
networking.k8s.io/v1:NetworkPolicy policy/v1:PodDisruptionBudget
"""

# type -> where its refresh's reads are granted
REFRESH_READS: dict[str, Grant] = {
    **{f"aws:{t}": "ReadOnlyAccess" for t in _AWS_TYPES.split()},
    **{f"kubernetes:{t}": "eks-view" for t in _KUBERNETES_TYPES.split()},
    "random:index/randomId:RandomId": "state",
    "random:index/randomPassword:RandomPassword": "state",
}

# type -> the actions its refresh calls that ReadOnlyAccess withholds (module docstring)
REFRESH_EXTRAS: dict[str, tuple[str, ...]] = {
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretsmanager:GetSecretValue", "kms:Decrypt"),
}


def refresh_policy(stack_tag: str, stacks: list[str]) -> dict:
    """The inline policy the plan and drift role holds beside ReadOnlyAccess: the secret values of
    the stacks' own secrets (by their stack tag), decrypted only through Secrets Manager."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RefreshSecretVersions",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": "*",
                "Condition": {"StringEquals": {f"secretsmanager:ResourceTag/{stack_tag}": sorted(stacks)}},
            },
            {
                "Sid": "DecryptThroughSecretsManager",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
            },
        ],
    }


def granted_actions(policy: dict) -> set[str]:
    """The actions a policy's Allow statements name (the policy is ours: no wildcards, no NotAction)."""
    out: set[str] = set()
    for statement in policy.get("Statement", []):
        if statement.get("Effect") == "Allow":
            actions = statement.get("Action", [])
            out |= {actions} if isinstance(actions, str) else set(actions)
    return out


def uncovered(types: set[str], policy: dict) -> dict[str, list[str]]:
    """Per type of the plan, what its refresh needs that ReadOnlyAccess plus `policy` do not give;
    a type nobody has classified needs everything (`["?"]`)."""
    granted = granted_actions(policy)
    out: dict[str, list[str]] = {}
    for t in sorted(types):
        if t not in REFRESH_READS:
            out[t] = ["?"]
        elif missing := [a for a in REFRESH_EXTRAS.get(t, ()) if a not in granted]:
            out[t] = missing
    return out


def check_refresh(ctx: Context) -> CheckResult:
    from components.tagging import TAG_STACK

    result = CheckResult(
        "refresh",
        "the plan and drift role (ReadOnlyAccess, the EKS view policy and refresh_policy) may read back every resource "
        "type of the plan as `pulumi preview --refresh` does: ReadOnlyAccess withholds secretsmanager:GetSecretValue "
        "and kms:Decrypt, which a SecretVersion's refresh calls (docs/ci.md)",
    )
    types = {r.type for r in ctx.plan.custom if not r.type.startswith("pulumi:providers:")}
    result.checked = len(types)
    policy = refresh_policy(TAG_STACK, [ctx.cfg.platform or ctx.plan.stack])  # a cell's resources carry its platform's tag
    for t, missing in uncovered(types, policy).items():
        urn = next(r.urn for r in ctx.plan.custom if r.type == t)
        if missing == ["?"]:
            result.findings.append(
                Finding(
                    urn,
                    f"no one has said what a refresh of {t} reads: the drift job may meet AccessDenied on it",
                    "add the type to meridian.preflight.refresh.REFRESH_READS (and REFRESH_EXTRAS for reads "
                    "ReadOnlyAccess withholds), then update the role's policy in docs/ci.md",
                )
            )
        else:
            result.findings.append(
                Finding(urn, f"refreshing {t} calls {', '.join(missing)}, which the role lacks", "extend refresh_policy")
            )
    result.notes.append(f"the role's inline policy: {json.dumps(policy, sort_keys=True)}")
    return result
