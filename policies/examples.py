"""A small stack that passes every rule, and mutations that each break one rule.

Shaped like the plan JSON's `resources` (plus `propertyDependencies`), with the camelCase inputs
of pulumi-aws 7 / pulumi-kubernetes 4 that the program really sends. Used by the tests (through
the analyzer protocol) and by the catalog (docs/policies.md shows each rule's first mutation's
real message). Plain data: imports nothing from the pack or the project.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

STACK = "test"
ACCOUNT = "123456789012"
PRIMARY, DR = "us-east-1", "us-west-2"

# Per-stack settings the rules need, as policies/config/<stack>.json would carry them.
CONFIG = {
    "aws-resource-region-allowed": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "aws-replication-destination-allowed": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "sns-subscription-endpoint-in-zone": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "rds-database-dr-member": {"drRegion": DR},
    "s3-bucket-access-logging": {"requireAccessLogs": True, "exemptBuckets": ["pool-replica-bucket"]},
}
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the wire format's "known after apply"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::meridian::{type_}::{name}"


def _tags(region: str, **extra: str) -> dict[str, str]:
    return {
        "meridian:stack": STACK,
        "meridian:zone": "us",
        "meridian:region": region,
        "meridian:cost-center": "platform-test",
        **extra,
    }


class _Builder:
    def __init__(self) -> None:
        self.resources: list[dict] = []
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
        tags: dict | None = None,
    ) -> str:
        u = urn(type_, name)
        if type_.startswith("aws:") and tags is not False:
            inputs = {**inputs, "tags": tags if tags is not None else _tags(region or PRIMARY)}
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

    def arn(self, service: str, region: str, rest: str) -> str:
        return f"arn:aws:{service}:{region}:{ACCOUNT}:{rest}"


def valid_stack() -> list[dict]:
    """Every area of the pack, configured the way the rules want it."""
    b = _Builder()
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
        defaults = {"defaultTags": {"tags": _tags(region)}} if region == DR else {}
        b.providers[region] = b.add(
            "pulumi:providers:aws",
            region,
            {"region": region, "skipCredentialsValidation": "false", **defaults},
            region=None,
            provider="",
        )
    k8s = b.add(
        "pulumi:providers:kubernetes", "eks-k8s", {"kubeconfig": "{}", "enableServerSideApply": "true"}, region=None, provider=""
    )

    # keys
    platform_key = b.add("aws:kms/key:Key", "platform-key", {"enableKeyRotation": True, "deletionWindowInDays": 30})
    dr_key = b.add("aws:kms/key:Key", "dr-key", {"enableKeyRotation": True}, region=DR, provider=b.providers[DR], tags=False)
    acme_key = b.add(
        "aws:kms/key:Key", "acme-key", {"enableKeyRotation": True}, tags=_tags(PRIMARY, **{"meridian:tenant": "acme"})
    )
    b.add("aws:kms/key:Key", "globex-key", {"enableKeyRotation": True}, tags=_tags(PRIMARY, **{"meridian:tenant": "globex"}))
    key_arn = b.arn("kms", PRIMARY, "key/1111-platform")
    dr_key_arn = b.arn("kms", DR, "key/2222-dr")
    acme_key_arn = b.arn("kms", PRIMARY, "key/3333-acme")

    # S3: a pool bucket with every guard, and its replica in the dr region
    for name, region, key in (("pool", PRIMARY, platform_key), ("pool-replica", DR, dr_key)):
        prov = b.providers[region]
        bucket = b.add("aws:s3/bucket:Bucket", f"{name}-bucket", {}, region=region, provider=prov)
        on = {"bucket": [bucket]}
        b.add(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{name}-no-public",
            {
                "bucket": f"{name}-bucket-1234567",
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            region=region,
            provider=prov,
            parent=bucket,
            deps=on,
            tags=False,
        )
        b.add(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{name}-versioning",
            {"bucket": f"{name}-bucket-1234567", "versioningConfiguration": {"status": "Enabled"}},
            region=region,
            provider=prov,
            parent=bucket,
            deps=on,
            tags=False,
        )
        b.add(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{name}-sse",
            {
                "bucket": f"{name}-bucket-1234567",
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": key_arn if region == PRIMARY else dr_key_arn,
                        },
                        "bucketKeyEnabled": True,
                    }
                ],
            },
            region=region,
            provider=prov,
            parent=bucket,
            deps={"bucket": [bucket], "rules": [key]},
            tags=False,
        )
        arn = f"arn:aws:s3:::{name}-bucket-1234567"
        b.add(
            "aws:s3/bucketPolicy:BucketPolicy",
            f"{name}-tls-only",
            {
                "bucket": f"{name}-bucket-1234567",
                "policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DenyInsecureTransport",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [arn, f"{arn}/*"],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                ),
            },
            region=region,
            provider=prov,
            parent=bucket,
            deps={"bucket": [bucket], "policy": [bucket]},
            tags=False,
        )
    pool = urn("aws:s3/bucket:Bucket", "pool-bucket")
    replica = urn("aws:s3/bucket:Bucket", "pool-replica-bucket")
    b.add(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "pool-replication",
        {
            "bucket": "pool-bucket-1234567",
            "role": f"arn:aws:iam::{ACCOUNT}:role/replication",
            "rules": [
                {
                    "id": "all",
                    "status": "Enabled",
                    "destination": {
                        "bucket": "arn:aws:s3:::pool-replica-bucket-1234567",
                        "storageClass": "STANDARD",
                        "encryptionConfiguration": {"replicaKmsKeyId": dr_key_arn},
                    },
                }
            ],
        },
        deps={"bucket": [pool], "rules": [replica]},
        tags=False,
    )

    # RDS: an Aurora global database with a secondary (and an instance) in the dr region
    b.add(
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
        "db-params",
        {"family": "aurora-postgresql16", "parameters": [{"name": "rds.force_ssl", "value": "1"}]},
    )
    glob = b.add(
        "aws:rds/globalCluster:GlobalCluster",
        "db-global",
        {
            "globalClusterIdentifier": "test-db",
            "engine": "aurora-postgresql",
            "engineVersion": "16.4",
            "storageEncrypted": True,
            "deletionProtection": True,
        },
    )
    common = {
        "engine": "aurora-postgresql",
        "engineVersion": "16.4",
        "storageEncrypted": True,
        "deletionProtection": True,
        "backupRetentionPeriod": 14,
        "globalClusterIdentifier": "test-db",
        "skipFinalSnapshot": False,
        "enabledCloudwatchLogsExports": ["postgresql"],
        "iamDatabaseAuthenticationEnabled": True,
    }
    writer = b.add(
        "aws:rds/cluster:Cluster",
        "db-primary-cluster",
        {
            **common,
            "kmsKeyId": key_arn,
            "masterUsername": "admin",
            "masterPassword": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "s3cret"},
        },
        deps={"globalClusterIdentifier": [glob], "kmsKeyId": [platform_key]},
    )
    b.add(
        "aws:rds/clusterInstance:ClusterInstance",
        "db-primary-0",
        {
            "clusterIdentifier": "db-primary-cluster-1234567",
            "instanceClass": "db.r6g.large",
            "engine": "aurora-postgresql",
            "publiclyAccessible": False,
        },
        parent=writer,
        deps={"clusterIdentifier": [writer]},
        tags=_tags(PRIMARY),
    )
    secondary = b.add(
        "aws:rds/cluster:Cluster",
        "db-dr-cluster",
        {**common, "kmsKeyId": dr_key_arn},
        region=DR,
        provider=b.providers[DR],
        deps={"globalClusterIdentifier": [glob], "kmsKeyId": [dr_key]},
    )
    b.add(
        "aws:rds/clusterInstance:ClusterInstance",
        "db-dr-0",
        {"clusterIdentifier": "db-dr-cluster-1234567", "instanceClass": "db.r6g.large", "engine": "aurora-postgresql"},
        region=DR,
        provider=b.providers[DR],
        parent=secondary,
        deps={"clusterIdentifier": [secondary]},
    )

    # EKS, logs, topics, disks, backups
    b.add(
        "aws:eks/cluster:Cluster",
        "eks",
        {
            "name": "eks",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks",
            "vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "endpointPrivateAccess": True, "endpointPublicAccess": False},
            "encryptionConfig": {"provider": {"keyArn": key_arn}, "resources": ["secrets"]},
            "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
        },
        deps={"encryptionConfig": [platform_key]},
    )
    vpc = b.add("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16", "enableDnsHostnames": True})
    b.add(
        "aws:ec2/flowLog:FlowLog",
        "vpc-flow-log",
        {"vpcId": "vpc-1", "trafficType": "ALL", "logDestination": b.arn("logs", PRIMARY, "log-group:flowlogs")},
        deps={"vpcId": [vpc]},
    )
    b.add("aws:cloudwatch/logGroup:LogGroup", "flowlogs", {"retentionInDays": 365, "kmsKeyId": key_arn})
    alerts = b.add("aws:sns/topic:Topic", "alerts", {"kmsMasterKeyId": key_arn}, deps={"kmsMasterKeyId": [platform_key]})
    alerts_arn = b.arn("sns", PRIMARY, "alerts")
    b.add(
        "aws:sns/topicSubscription:TopicSubscription",
        "alerts-oncall",
        {"topic": alerts_arn, "protocol": "email", "endpoint": "oncall@example.com"},
        deps={"topic": [alerts]},
        tags=False,
    )
    b.add(
        "aws:sns/topicSubscription:TopicSubscription",
        "alerts-queue",
        {"topic": alerts_arn, "protocol": "sqs", "endpoint": b.arn("sqs", DR, "alerts-intake")},
        deps={"topic": [alerts]},
        tags=False,
    )
    b.add(
        "aws:ebs/volume:Volume",
        "scratch",
        {"availabilityZone": f"{PRIMARY}a", "size": 100, "encrypted": True, "kmsKeyId": key_arn},
    )
    vault = b.add("aws:backup/vault:Vault", "vault", {"name": "test-vault", "kmsKeyArn": key_arn})
    dr_vault = b.add(
        "aws:backup/vault:Vault",
        "dr-vault",
        {"name": "test-dr-vault", "kmsKeyArn": dr_key_arn},
        region=DR,
        provider=b.providers[DR],
    )
    for v, name, region in ((vault, "test-vault", PRIMARY), (dr_vault, "test-dr-vault", DR)):
        b.add(
            "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
            f"{name}-lock",
            {"backupVaultName": name, "minRetentionDays": 14},
            region=region,
            provider=b.providers[region],
            deps={"backupVaultName": [v]},
            tags=False,
        )
    plan = b.add(
        "aws:backup/plan:Plan",
        "backups",
        {
            "name": "daily",
            "rules": [
                {
                    "ruleName": "daily",
                    "targetVaultName": "test-vault",
                    "schedule": "cron(0 5 * * ? *)",
                    "lifecycle": {"deleteAfter": 35},
                    "copyActions": [{"destinationVaultArn": b.arn("backup", DR, "backup-vault:test-dr-vault")}],
                }
            ],
        },
        deps={"rules": [vault, dr_vault]},
    )
    covered = [writer, secondary, urn("aws:s3/bucket:Bucket", "pool-bucket"), urn("aws:s3/bucket:Bucket", "pool-replica-bucket")]
    b.add(
        "aws:backup/selection:Selection",
        "backup-everything",
        {
            "planId": "plan-1",
            "name": "everything",
            "iamRoleArn": f"arn:aws:iam::{ACCOUNT}:role/backup",
            "resources": [
                f"arn:aws:rds:{PRIMARY}:{ACCOUNT}:cluster:db-primary",
                f"arn:aws:rds:{DR}:{ACCOUNT}:cluster:db-dr",
                "arn:aws:s3:::pool-bucket-1234567",
                "arn:aws:s3:::pool-replica-bucket-1234567",
            ],
        },
        deps={"planId": [plan], "resources": covered},
        tags=False,
    )
    b.add(
        "aws:s3/bucketLoggingV2:BucketLoggingV2",
        "pool-access-logs",
        {"bucket": "pool-bucket-1234567", "targetBucket": "pool-replica-bucket-1234567", "targetPrefix": "access/pool/"},
        deps={"bucket": [urn("aws:s3/bucket:Bucket", "pool-bucket")]},
        tags=False,
    )

    # network: a load balancer's security group may face the internet on 443
    lb_sg = b.add(
        "aws:ec2/securityGroup:SecurityGroup",
        "lb-sg",
        {
            "vpcId": "vpc-1",
            "description": "public https",
            "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}],
        },
    )
    lb = b.add(
        "aws:lb/loadBalancer:LoadBalancer",
        "api-lb",
        {
            "loadBalancerType": "application",
            "internal": False,
            "securityGroups": ["sg-lb"],
            "subnets": ["subnet-a", "subnet-b"],
            "dropInvalidHeaderFields": True,
            "desyncMitigationMode": "defensive",
        },
        deps={"securityGroups": [lb_sg]},
    )
    # two tracks behind one listener, split by weight (components.ingress)
    tracks = {
        track: b.add(
            "aws:lb/targetGroup:TargetGroup",
            f"api-{track}",
            {
                "targetType": "ip",
                "port": 8080,
                "protocol": "HTTP",
                "vpcId": "vpc-1",
                "healthCheck": {"enabled": True, "protocol": "HTTP", "path": "/healthz", "matcher": "200", "interval": 10},
            },
        )
        for track in ("stable", "canary")
    }
    b.add(
        "aws:lb/listener:Listener",
        "api-https",
        {
            "loadBalancerArn": b.arn("elasticloadbalancing", PRIMARY, "loadbalancer/app/api/1"),
            "port": 443,
            "protocol": "HTTPS",
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "certificateArn": b.arn("acm", PRIMARY, "certificate/1"),
            "defaultActions": [
                {
                    "type": "forward",
                    "forward": {
                        "targetGroups": [
                            {"arn": b.arn("elasticloadbalancing", PRIMARY, f"targetgroup/api-{t}/1"), "weight": w}
                            for t, w in (("stable", 95), ("canary", 5))
                        ]
                    },
                }
            ],
        },
        deps={"loadBalancerArn": [lb], "defaultActions": list(tracks.values())},
    )
    b.add(
        "aws:ec2/securityGroup:SecurityGroup",
        "db-sg",
        {
            "vpcId": "vpc-1",
            "description": "postgres from nodes",
            "ingress": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-nodes"]}],
        },
    )

    # IAM: service roles, scoped
    eks_role = b.add(
        "aws:iam/role:Role",
        "eks-role",
        {
            "assumeRolePolicy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                }
            )
        },
    )
    b.add(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "eks-role-cluster",
        {"role": "eks-role-1234567", "policyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"},
        parent=eks_role,
        deps={"role": [eks_role]},
        tags=False,
    )
    b.add(
        "aws:iam/policy:Policy",
        "deploy",
        {
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": f"arn:aws:iam::{ACCOUNT}:role/eks-role-1234567",
                        },
                        {
                            "Effect": "Deny",
                            "Action": "*",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
                        },
                    ],
                }
            )
        },
    )

    # a tenant: namespace fenced and bounded, IRSA role reaching its prefix and key only, a budget
    ns = b.add(
        "kubernetes:core/v1:Namespace",
        "t-acme-ns",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "t-acme", "labels": {"meridian.io/tenant": "acme", "meridian.io/plan": "pro"}},
        },
        region=None,
        provider=k8s,
    )
    meta = {"namespace": "t-acme", "labels": {"meridian.io/tenant": "acme"}}
    b.add(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "t-acme-default-deny",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {**meta, "name": "default-deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        region=None,
        provider=k8s,
        parent=ns,
    )
    b.add(
        "kubernetes:core/v1:ResourceQuota",
        "t-acme-quota",
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {**meta, "name": "plan-quota"},
            "spec": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "40"}},
        },
        region=None,
        provider=k8s,
        parent=ns,
    )
    oidc = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
    role = b.add(
        "aws:iam/role:Role",
        "t-acme-role",
        {
            "path": "/meridian/tenants/",
            "assumeRolePolicy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc}"},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{oidc}:sub": "system:serviceaccount:t-acme:acme-app",
                                    f"{oidc}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            ),
        },
        tags=_tags(PRIMARY, **{"meridian:tenant": "acme"}),
    )
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "t-acme-data-access",
        {
            "role": "t-acme-role-1234567",
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "TenantObjects",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/acme/*",
                        },
                        {
                            "Sid": "TenantListing",
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": "arn:aws:s3:::pool-bucket-1234567",
                            "Condition": {"StringLike": {"s3:prefix": ["tenants/acme/*"]}},
                        },
                        {
                            "Sid": "TenantKey",
                            "Effect": "Allow",
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            "Resource": acme_key_arn,
                        },
                    ],
                }
            ),
        },
        parent=role,
        deps={"role": [role], "policy": [pool, acme_key]},
        tags=False,
    )
    b.add(
        "kubernetes:core/v1:ServiceAccount",
        "t-acme-sa",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                **meta,
                "name": "acme-app",
                "annotations": {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/t-acme-role-1234567"},
            },
        },
        region=None,
        provider=k8s,
        parent=ns,
        deps={"metadata": [role]},
    )
    b.add(
        "kubernetes:apps/v1:Deployment",
        "t-acme-app",
        {
            "metadata": {**meta, "name": "app"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "acme"}},
                "template": {
                    "metadata": {"labels": {"app": "acme"}},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "serviceAccountName": "acme-app",
                        "containers": [
                            {
                                "name": "app",
                                "image": "registry.example.com/app:1",
                                "ports": [{"containerPort": 8080}],
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
        region=None,
        provider=k8s,
        parent=ns,
    )
    # a second tenant's key, so isolation has something to get wrong
    b.add(
        "kubernetes:core/v1:Namespace",
        "t-globex-ns",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t-globex", "labels": {"meridian.io/tenant": "globex"}}},
        region=None,
        provider=k8s,
    )
    gmeta = {"namespace": "t-globex", "labels": {"meridian.io/tenant": "globex"}}
    b.add(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "t-globex-default-deny",
        {"metadata": {**gmeta, "name": "default-deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        region=None,
        provider=k8s,
    )
    b.add(
        "kubernetes:core/v1:ResourceQuota",
        "t-globex-quota",
        {"metadata": {**gmeta, "name": "plan-quota"}, "spec": {"hard": {"pods": "20"}}},
        region=None,
        provider=k8s,
    )

    # budgets: the stack's and each tenant's
    for name, tag in (
        ("stack", f"user:meridian:stack${STACK}"),
        ("tenant-acme", "user:meridian:tenant$acme"),
        ("tenant-globex", "user:meridian:tenant$globex"),
    ):
        b.add(
            "aws:budgets/budget:Budget",
            f"budget-{name}",
            {
                "budgetType": "COST",
                "timeUnit": "MONTHLY",
                "limitAmount": "1000.00",
                "limitUnit": "USD",
                "costFilters": [{"name": "TagKeyValue", "values": [tag]}],
            },
        )

    # Route 53 failover: PRIMARY with a health check, SECONDARY for the same name
    zone = b.add("aws:route53/zone:Zone", "zone", {"name": "test.meridian.example.com"})
    for role_, region in (("primary", PRIMARY), ("secondary", DR)):
        check = b.add(
            "aws:route53/healthCheck:HealthCheck",
            f"{role_}-check",
            {
                "type": "HTTPS",
                "fqdn": f"lb.{region}.example.com",
                "port": 443,
                "resourcePath": "/healthz",
                "requestInterval": 10,
                "failureThreshold": 3,
            },
        )
        b.add(
            "aws:route53/record:Record",
            f"{role_}-record",
            {
                "zoneId": "ZTEST",
                "name": "api.test.meridian.example.com",
                "type": "CNAME",
                "ttl": 30,
                "records": [f"lb.{region}.example.com"],
                "setIdentifier": f"{role_}-{region}",
                "failoverRoutingPolicies": [{"type": role_.upper()}],
                "healthCheckId": f"hc-{role_}",
            },
            deps={"zoneId": [zone], "healthCheckId": [check]},
            tags=False,
        )
    return b.resources


# --- mutations: each breaks one rule --------------------------------------------------------------

Resources = list[dict]


def find(resources: Resources, name: str) -> dict:
    return next(r for r in resources if r["name"] == name)


def _set(name: str, path: str, value) -> Callable[[Resources], None]:
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


DELETE = object()


def _drop(*names: str) -> Callable[[Resources], None]:
    def mutate(resources: Resources) -> None:
        resources[:] = [r for r in resources if r["name"] not in names]

    return mutate


def _doc(name: str, statement: dict, field: str = "policy") -> Callable[[Resources], None]:
    """Add a statement to the policy document of resource `name`."""

    def mutate(resources: Resources) -> None:
        inputs = find(resources, name)["inputs"]
        doc = json.loads(inputs[field]) if field in inputs else {"Version": "2012-10-17", "Statement": []}
        doc["Statement"].append(statement)
        inputs[field] = json.dumps(doc)

    return mutate


def _add_wide_policy() -> Callable[[Resources], None]:
    """An in-stack managed policy `wide` reaching every object of the pool bucket (to attach to a tenant role)."""
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"}
    return _add_resource(_res("aws:iam/policy:Policy", "wide", {"policy": json.dumps({"Statement": [statement]})}))


def _all(*steps: Callable[[Resources], None]) -> Callable[[Resources], None]:
    def mutate(resources: Resources) -> None:
        for step in steps:
            step(resources)

    return mutate


def _move_region(name: str, region: str) -> Callable[[Resources], None]:
    return _set(name, "region", region)


def _add_resource(resource: dict) -> Callable[[Resources], None]:
    def mutate(resources: Resources) -> None:
        resources.append(copy.deepcopy(resource))

    return mutate


def _res(type_: str, name: str, inputs: dict, *, region: str = PRIMARY, deps: dict | None = None) -> dict:
    """A resource to add, under the primary region's provider."""
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


# rule -> [(what the mutation does, mutation)]; the first one is the catalog's example.
MUTATIONS: dict[str, list[tuple[str, Callable[[Resources], None]]]] = {
    "aws-resource-region-allowed": [
        ("a database cluster moved to eu-west-1 with a per-resource region", _move_region("db-primary-cluster", "eu-west-1")),
        ("the dr provider moved to ap-south-1", _set("us-west-2", "region", "ap-south-1")),
        ("a bucket whose region is computed (unknown at preview)", _set("pool-bucket", "region", UNKNOWN)),
    ],
    "aws-replication-destination-allowed": [
        (
            "replication to a bucket outside the stack (literal ARN, region unknowable)",
            _all(
                _set("pool-replication", "rules.0.destination.bucket", "arn:aws:s3:::somewhere-else"),
                lambda rs: find(rs, "pool-replication")["propertyDependencies"].update(rules=[]),
            ),
        ),
        ("the replica bucket moved to eu-central-1", _move_region("pool-replica-bucket", "eu-central-1")),
        (
            "a backup copy to a vault ARN in eu-west-1",
            _all(
                _set(
                    "backups", "rules.0.copyActions.0.destinationVaultArn", f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:x"
                ),
                lambda rs: find(rs, "backups")["propertyDependencies"].update(rules=[]),
            ),
        ),
        (
            "a second copy action outside the zone while the rule's local vault and first copy are in it",
            lambda rs: find(rs, "backups")["inputs"]["rules"][0]["copyActions"].append(
                {"destinationVaultArn": f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:x"}
            ),
        ),
        (
            "a second S3 destination outside the stack beside an in-zone linked replica",
            lambda rs: find(rs, "pool-replication")["inputs"]["rules"].append(
                {"id": "out", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::elsewhere"}}
            ),
        ),
        (
            "a DynamoDB table replica in eu-west-1",
            _add_resource(
                _res(
                    "aws:dynamodb/table:Table",
                    "sessions",
                    {
                        "hashKey": "id",
                        "attributes": [{"name": "id", "type": "S"}],
                        "replicas": [{"regionName": "eu-west-1"}],
                        "tags": _tags(PRIMARY),
                    },
                )
            ),
        ),
        (
            "a Secrets Manager replica in eu-west-1",
            _add_resource(
                _res(
                    "aws:secretsmanager/secret:Secret",
                    "db-secret",
                    {"replicas": [{"region": "eu-west-1"}], "tags": _tags(PRIMARY)},
                )
            ),
        ),
        (
            "ECR replication to eu-west-1",
            _add_resource(
                _res(
                    "aws:ecr/replicationConfiguration:ReplicationConfiguration",
                    "ecr-repl",
                    {"replicationConfiguration": {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": ACCOUNT}]}]}},
                )
            ),
        ),
        (
            "an RDS snapshot copy to eu-west-1",
            _add_resource(
                _res(
                    "aws:rds/snapshotCopy:SnapshotCopy",
                    "snap-copy",
                    {
                        "sourceDbSnapshotIdentifier": f"arn:aws:rds:{PRIMARY}:{ACCOUNT}:snapshot:s",
                        "targetDbSnapshotIdentifier": "s2",
                        "destinationRegion": "eu-west-1",
                    },
                )
            ),
        ),
        (
            "an Aurora replica of a cluster in eu-west-1",
            _set("db-dr-cluster", "replicationSourceIdentifier", f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:x"),
        ),
    ],
    "rds-storage-encrypted": [
        ("the primary cluster with storage encryption off", _set("db-primary-cluster", "storageEncrypted", False)),
        ("the dr cluster without a KMS key", _set("db-dr-cluster", "kmsKeyId", DELETE)),
        ("the global cluster relying on the (unencrypted) default", _set("db-global", "storageEncrypted", DELETE)),
        ("the primary cluster on the AWS-managed key", _set("db-primary-cluster", "kmsKeyId", "alias/aws/rds")),
        ("a key setting that names no key", _set("db-primary-cluster", "kmsKeyId", "x")),
        (
            "the dr cluster on a key in another region",
            _set("db-dr-cluster", "kmsKeyId", f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/1111-platform"),
        ),
        ("Performance Insights without a customer key", _set("db-primary-cluster", "performanceInsightsEnabled", True)),
    ],
    "kms-key-rotation-and-policy": [
        ("a key without rotation", _set("platform-key", "enableKeyRotation", False)),
        (
            "a key policy open to every AWS account",
            _set(
                "platform-key",
                "policy",
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}),
            ),
        ),
    ],
    "lb-listener-tls": [
        ("an HTTPS listener on the 2016 TLS policy", _set("api-https", "sslPolicy", "ELBSecurityPolicy-2016-08")),
        (
            "an HTTPS listener on the 2017 TLS 1.2 policy (no TLS 1.3)",
            _set("api-https", "sslPolicy", "ELBSecurityPolicy-TLS-1-2-2017-01"),
        ),
        ("an HTTPS listener with no TLS policy (the provider default is 2016-08)", _set("api-https", "sslPolicy", DELETE)),
        ("a plain HTTP listener forwarding traffic by weight", _set("api-https", "protocol", "HTTP")),
    ],
    "lb-alb-hardened": [
        ("an ALB passing invalid header fields on", _set("api-lb", "dropInvalidHeaderFields", False)),
        (
            "an ALB leaving dropInvalidHeaderFields at the provider default (off)",
            _set("api-lb", "dropInvalidHeaderFields", DELETE),
        ),
        ("an ALB only monitoring HTTP desync", _set("api-lb", "desyncMitigationMode", "monitor")),
        ("an internet-facing ALB without its own security group", _set("api-lb", "securityGroups", DELETE)),
    ],
    "lb-target-group-health-checked": [
        ("the canary target group with its health check off", _set("api-canary", "healthCheck.enabled", False)),
        ("the stable target group checking the default path `/`", _set("api-stable", "healthCheck.path", DELETE)),
        (
            "the stable target group with no health check block (default path and matcher)",
            _set("api-stable", "healthCheck", DELETE),
        ),
        ("the canary target group accepting any 2xx-3xx", _set("api-canary", "healthCheck.matcher", DELETE)),
    ],
    "ec2-network-acl-admin-ports-closed": [
        (
            "a NACL rule opening SSH to the internet",
            _add_resource(
                _res(
                    "aws:ec2/networkAclRule:NetworkAclRule",
                    "ssh-in",
                    {
                        "networkAclId": "acl-1",
                        "ruleNumber": 100,
                        "egress": False,
                        "protocol": "tcp",
                        "ruleAction": "allow",
                        "cidrBlock": "0.0.0.0/0",
                        "fromPort": 22,
                        "toPort": 22,
                    },
                )
            ),
        ),
    ],
    "rds-parameter-group-tls-required": [
        ("rds.force_ssl set to 0", _set("db-params", "parameters.0.value", "0")),
        ("rds.force_ssl not set (default off)", _set("db-params", "parameters", [])),
    ],
    "ebs-volume-encrypted": [
        ("a volume with encryption off", _set("scratch", "encrypted", False)),
    ],
    "eks-cluster-secrets-encrypted": [
        ("a cluster without secrets encryption", _set("eks", "encryptionConfig", DELETE)),
    ],
    "sns-topic-encrypted": [
        ("a topic without a KMS key", _set("alerts", "kmsMasterKeyId", DELETE)),
        ("a topic on the AWS-managed key", _set("alerts", "kmsMasterKeyId", "alias/aws/sns")),
    ],
    "backup-vault-encrypted": [
        ("a vault on the default key", _set("vault", "kmsKeyArn", DELETE)),
    ],
    "cloudwatch-log-group-encrypted": [
        ("a log group without a KMS key", _set("flowlogs", "kmsKeyId", DELETE)),
    ],
    "s3-bucket-encrypted": [
        (
            "default encryption switched to SSE-S3",
            _set("pool-sse", "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256"),
        ),
        ("a bucket without default-encryption config", _drop("pool-sse")),
        (
            "replicas written without a customer key",
            _set("pool-replication", "rules.0.destination.encryptionConfiguration", DELETE),
        ),
    ],
    "s3-bucket-tls-only": [
        ("the TLS-only bucket policy removed", _drop("pool-tls-only")),
        (
            "a bucket policy that allows instead of denying plain HTTP",
            _set(
                "pool-tls-only",
                "policy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                "Action": "s3:GetObject",
                                "Resource": "*",
                            }
                        ]
                    }
                ),
            ),
        ),
    ],
    "s3-bucket-public-access-blocked": [
        ("the bucket made public: public access block off", _set("pool-no-public", "blockPublicPolicy", False)),
        ("a bucket without a public access block", _drop("pool-replica-no-public")),
        ("a public-read canned ACL", _set("pool-bucket", "acl", "public-read")),
        (
            "a bucket policy open to everyone",
            _doc(
                "pool-tls-only",
                {
                    "Sid": "Public",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::pool-bucket-1234567/*",
                },
            ),
        ),
        (
            "Principal * allowed under a condition",
            _doc(
                "pool-tls-only",
                {
                    "Sid": "FromVpce",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::pool-bucket-1234567/*",
                    "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}},
                },
            ),
        ),
        (
            "the bucket's inline policy open to everyone",
            _set(
                "pool-bucket",
                "policy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::pool-bucket-1234567/*",
                            }
                        ]
                    }
                ),
            ),
        ),
        (
            "a BucketAcl grant to AllUsers",
            _add_resource(
                _res(
                    "aws:s3/bucketAcl:BucketAcl",
                    "pool-acl",
                    {
                        "bucket": "pool-bucket-1234567",
                        "accessControlPolicy": {
                            "owner": {"id": "o"},
                            "grants": [
                                {
                                    "permission": "READ",
                                    "grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                }
                            ],
                        },
                    },
                    deps={"bucket": [urn("aws:s3/bucket:Bucket", "pool-bucket")]},
                )
            ),
        ),
        (
            "a BucketV2 without a public access block",
            _add_resource(_res("aws:s3/bucketV2:BucketV2", "legacy", {"tags": _tags(PRIMARY)})),
        ),
    ],
    "ec2-security-group-ingress-restricted": [
        ("the database security group open to 0.0.0.0/0 on 5432", _set("db-sg", "ingress.0.cidrBlocks", ["0.0.0.0/0"])),
        (
            "443 open to the world on a security group no load balancer uses",
            _set("db-sg", "ingress.0", {"protocol": "tcp", "fromPort": 443, "toPort": 443, "ipv6CidrBlocks": ["::/0"]}),
        ),
        ("the load balancer's group opening all ports", _set("lb-sg", "ingress.0.protocol", "-1")),
        (
            "two halves that add up to the internet on 22",
            _set(
                "db-sg",
                "ingress.0",
                {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]},
            ),
        ),
        (
            "the default security group with an ingress rule",
            _add_resource(
                _res(
                    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                    "default-sg",
                    {
                        "vpcId": "vpc-1",
                        "ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}],
                        "tags": _tags(PRIMARY),
                    },
                )
            ),
        ),
        (
            "the database's security group with egress to the internet",
            _all(
                _set("db-sg", "egress", [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]),
                _set("db-primary-cluster", "vpcSecurityGroupIds", ["sg-db"]),
                lambda rs: find(rs, "db-primary-cluster")["propertyDependencies"].update(
                    vpcSecurityGroupIds=[urn("aws:ec2/securityGroup:SecurityGroup", "db-sg")]
                ),
            ),
        ),
    ],
    "compute-and-data-not-public": [
        ("the writer instance made publicly accessible", _set("db-primary-0", "publiclyAccessible", True)),
        ("an Aurora cluster-level publiclyAccessible", _set("db-primary-cluster", "publiclyAccessible", True)),
        (
            "a Redshift cluster left public",
            _add_resource(
                _res(
                    "aws:redshift/cluster:Cluster",
                    "warehouse",
                    {"clusterIdentifier": "wh", "nodeType": "ra3.large", "publiclyAccessible": True, "tags": _tags(PRIMARY)},
                )
            ),
        ),
        (
            "an EC2 instance with a public IP",
            _add_resource(
                _res(
                    "aws:ec2/instance:Instance",
                    "bastion",
                    {
                        "ami": "ami-1",
                        "instanceType": "t3.micro",
                        "associatePublicIpAddress": True,
                        "tags": _tags(PRIMARY),
                        "rootBlockDevice": {"encrypted": True, "kmsKeyId": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/1111-platform"},
                    },
                )
            ),
        ),
        (
            "an EKS node group with SSH remote access",
            _add_resource(
                _res(
                    "aws:eks/nodeGroup:NodeGroup",
                    "nodes",
                    {
                        "clusterName": "eks",
                        "nodeRoleArn": "arn:aws:iam::123456789012:role/n",
                        "subnetIds": ["s"],
                        "tags": _tags(PRIMARY),
                        "scalingConfig": {"desiredSize": 1, "maxSize": 1, "minSize": 1},
                        "remoteAccess": {"ec2SshKey": "ops"},
                    },
                )
            ),
        ),
    ],
    "eks-cluster-endpoint-restricted": [
        (
            "the public endpoint left at the provider default (on, 0.0.0.0/0)",
            _set("eks", "vpcConfig.endpointPublicAccess", DELETE),
        ),
        (
            "the public endpoint open to 0.0.0.0/0",
            _all(_set("eks", "vpcConfig.endpointPublicAccess", True), _set("eks", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"])),
        ),
    ],
    "iam-policy-no-full-admin": [
        ("a policy allowing * on *", _doc("deploy", {"Effect": "Allow", "Action": "*", "Resource": "*"})),
        (
            "Action * on one specific resource",
            _doc("deploy", {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::pool-bucket-1234567"}),
        ),
        (
            "an inline role policy with NotAction on *",
            _set(
                "eks-role",
                "inlinePolicies",
                [
                    {
                        "name": "wide",
                        "policy": json.dumps({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}),
                    }
                ],
            ),
        ),
    ],
    "iam-policy-no-passrole-wildcard": [
        ("iam:PassRole on every role", _doc("deploy", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})),
        (
            "iam:PassRole on a role-ARN wildcard",
            _doc("deploy", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"}),
        ),
        ("iam:* on every resource", _doc("deploy", {"Effect": "Allow", "Action": ["iam:*"], "Resource": ["*"]})),
    ],
    "iam-principal-no-admin-policy": [
        (
            "AdministratorAccess attached to a workload role",
            _set("eks-role-cluster", "policyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        ),
        (
            "PowerUserAccess in a role's managed policy list",
            _set("t-acme-role", "managedPolicyArns", ["arn:aws:iam::aws:policy/PowerUserAccess"]),
        ),
        (
            "AdministratorAccess attached to a user",
            _add_resource(
                _res(
                    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
                    "ci-admin",
                    {"user": "ci", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
                )
            ),
        ),
        (
            "IAMFullAccess attached to a group",
            _add_resource(
                _res(
                    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
                    "ops-iam",
                    {"group": "ops", "policyArn": "arn:aws:iam::aws:policy/IAMFullAccess"},
                )
            ),
        ),
    ],
    "iam-policy-no-service-wildcard": [
        (
            "s3:* on one bucket",
            _doc("deploy", {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::pool-bucket-1234567"}),
        ),
        (
            "secretsmanager:* in a role's inline policy",
            _set(
                "eks-role",
                "inlinePolicies",
                [
                    {
                        "name": "secrets",
                        "policy": json.dumps(
                            {
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "secretsmanager:*",
                                        "Resource": f"arn:aws:secretsmanager:{PRIMARY}:{ACCOUNT}:secret:x",
                                    }
                                ]
                            }
                        ),
                    }
                ],
            ),
        ),
    ],
    "iam-role-trust-restricted": [
        (
            "a role anyone may assume",
            _set(
                "eks-role",
                "assumeRolePolicy",
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
            ),
        ),
        (
            "a role the whole account may assume",
            _set(
                "eks-role",
                "assumeRolePolicy",
                json.dumps(
                    {
                        "Statement": [
                            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
                        ]
                    }
                ),
            ),
        ),
        (
            "a web-identity trust without a :sub condition",
            _set(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc"},
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Condition": {"StringEquals": {"oidc:aud": "sts.amazonaws.com"}},
                            }
                        ]
                    }
                ),
            ),
        ),
    ],
    "aws-resource-required-tags": [
        ("a log group without its cost-center tag", _set("flowlogs", "tags.meridian:cost-center", DELETE)),
        ("a key with an empty stack tag", _set("platform-key", "tags.meridian:stack", "")),
        (
            "the dr provider's default tags without the region tag (its key sets no tags of its own)",
            _set(DR, "defaultTags.tags.meridian:region", DELETE),
        ),
    ],
    "sns-subscription-endpoint-in-zone": [
        (
            "a queue subscribed in another zone",
            _set("alerts-queue", "endpoint", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:alerts-intake"),
        ),
        (
            "a cleartext HTTP subscriber",
            _all(_set("alerts-oncall", "protocol", "http"), _set("alerts-oncall", "endpoint", "http://hooks.example.com/alerts")),
        ),
        ("an SQS endpoint given by name, not ARN", _set("alerts-queue", "endpoint", "alerts-intake")),
    ],
    "rds-deletion-protection-enabled": [
        ("the primary cluster without deletion protection", _set("db-primary-cluster", "deletionProtection", DELETE)),
    ],
    "rds-backup-retention-sufficient": [
        ("backups kept 3 days", _set("db-primary-cluster", "backupRetentionPeriod", 3)),
        ("backup retention left at the default (1 day)", _set("db-dr-cluster", "backupRetentionPeriod", DELETE)),
    ],
    "backup-vault-lock-enabled": [
        ("a vault without a lock", _drop("test-vault-lock")),
        ("a lock of 1 day", _set("test-dr-vault-lock", "minRetentionDays", 1)),
    ],
    "s3-bucket-versioning-enabled": [
        ("versioning suspended", _set("pool-versioning", "versioningConfiguration.status", "Suspended")),
        ("a bucket without versioning", _drop("pool-replica-versioning")),
    ],
    "route53-failover-record-ready": [
        (
            "the PRIMARY record's health check removed",
            _all(
                _set("primary-record", "healthCheckId", DELETE),
                lambda rs: find(rs, "primary-record")["propertyDependencies"].pop("healthCheckId"),
            ),
        ),
        ("the SECONDARY record removed", _drop("secondary-record")),
    ],
    "rds-database-dr-member": [
        ("the dr cluster removed from the global database", _drop("db-dr-cluster", "db-dr-0")),
        ("a dr cluster with no instance", _drop("db-dr-0")),
        (
            "a standalone RDS instance with no cross-region replica",
            _add_resource(
                {
                    "urn": urn("aws:rds/instance:Instance", "reports-db"),
                    "type": "aws:rds/instance:Instance",
                    "name": "reports-db",
                    "parent": None,
                    "provider": urn("pulumi:providers:aws", PRIMARY),
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "engine": "postgres",
                        "instanceClass": "db.t4g.medium",
                        "allocatedStorage": 50,
                        "storageEncrypted": True,
                        "kmsKeyId": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/1111-platform",
                        "deletionProtection": True,
                        "backupRetentionPeriod": 14,
                        "tags": _tags(PRIMARY),
                    },
                }
            ),
        ),
    ],
    "tenant-role-isolated": [
        (
            "the tenant role widened to every object in the bucket",
            _set(
                "t-acme-data-access",
                "policy",
                json.dumps(
                    {
                        "Statement": [
                            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"}
                        ]
                    }
                ),
            ),
        ),
        (
            "the tenant role widened to Resource *",
            _doc("t-acme-data-access", {"Effect": "Allow", "Action": ["s3:*", "kms:Decrypt"], "Resource": "*"}),
        ),
        (
            "the tenant role reaching another tenant's key",
            lambda rs: find(rs, "t-acme-data-access")["propertyDependencies"]["policy"].append(
                urn("aws:kms/key:Key", "globex-key")
            ),
        ),
        (
            "listing the whole shared bucket",
            _doc(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::pool-bucket-1234567"},
            ),
        ),
        (
            "the role assumable from another tenant's namespace",
            _set(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Principal": {"Federated": "x"},
                                "Condition": {"StringLike": {"oidc:sub": "system:serviceaccount:t-*:*"}},
                            }
                        ]
                    }
                ),
            ),
        ),
        ("another tenant's service account using the role", _set("t-acme-sa", "metadata.namespace", "t-globex")),
        (
            "AmazonS3FullAccess attached to the tenant role",
            _add_resource(
                _res(
                    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                    "t-acme-s3full",
                    {"role": "t-acme-role-1234567", "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
                    deps={"role": [urn("aws:iam/role:Role", "t-acme-role")]},
                )
            ),
        ),
        (
            "an inline role policy on every bucket (arn:aws:s3:::*)",
            _set(
                "t-acme-role",
                "inlinePolicies",
                [
                    {
                        "name": "all",
                        "policy": json.dumps(
                            {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"}]}
                        ),
                    }
                ],
            ),
        ),
        (
            "wildcards in the region and account segments (arn:aws:s3:*:*:*)",
            _doc("t-acme-data-access", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:*:*:*"}),
        ),
        (
            "a wildcard partition (arn:*:s3:::pool/*)",
            _doc(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:*:s3:::pool-bucket-1234567/*"},
            ),
        ),
        (
            "a wildcard service (arn:aws:*:*:*:*)",
            _doc("t-acme-data-access", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:*:*:*:*"}),
        ),
        (
            "another tenant's key named by a literal ARN",
            _doc(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/4444-globex"},
            ),
        ),
        (
            "a key named by an alias",
            _doc(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:alias/globex"},
            ),
        ),
        (
            "listing under a negated prefix condition",
            _doc(
                "t-acme-data-access",
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::pool-bucket-1234567",
                    "Condition": {"StringNotLike": {"s3:prefix": ["tenants/acme/*"]}},
                },
            ),
        ),
        ("secretsmanager:* on *", _doc("t-acme-data-access", {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"})),
        ("sts:AssumeRole on *", _doc("t-acme-data-access", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})),
        (
            "a trust policy open to every AWS principal",
            _set(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
            ),
        ),
        (
            "a web-identity trust without a :sub condition",
            _set(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc"},
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Condition": {"StringEquals": {"oidc:aud": "sts.amazonaws.com"}},
                            }
                        ]
                    }
                ),
            ),
        ),
        (
            "a PolicyAttachment giving the tenant role an in-stack policy reaching all objects",
            _all(
                _add_wide_policy(),
                _add_resource(
                    _res(
                        "aws:iam/policyAttachment:PolicyAttachment",
                        "wide-to-acme",
                        {"roles": ["t-acme-role-1234567"], "policyArn": "arn:aws:iam::123456789012:policy/wide"},
                        deps={
                            "roles": [urn("aws:iam/role:Role", "t-acme-role")],
                            "policyArn": [urn("aws:iam/policy:Policy", "wide")],
                        },
                    )
                ),
            ),
        ),
        (
            "a RolePolicyAttachment giving the tenant role an in-stack policy reaching all objects",
            _all(
                _add_wide_policy(),
                _add_resource(
                    _res(
                        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                        "wide-to-acme",
                        {"role": "t-acme-role-1234567", "policyArn": "arn:aws:iam::123456789012:policy/wide"},
                        deps={
                            "role": [urn("aws:iam/role:Role", "t-acme-role")],
                            "policyArn": [urn("aws:iam/policy:Policy", "wide")],
                        },
                    )
                ),
            ),
        ),
        (
            "AmazonS3FullAccess in the tenant role's managedPolicyArns",
            _set("t-acme-role", "managedPolicyArns", ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]),
        ),
        ("dynamodb:* on *", _doc("t-acme-data-access", {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})),
        (
            "an untagged workload role reaching every tenant's prefix",
            _all(
                _add_resource(
                    _res(
                        "aws:iam/role:Role",
                        "reporting-role",
                        {
                            "assumeRolePolicy": json.dumps(
                                {
                                    "Statement": [
                                        {
                                            "Effect": "Allow",
                                            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc"},
                                            "Action": "sts:AssumeRoleWithWebIdentity",
                                            "Condition": {"StringEquals": {"oidc:sub": "system:serviceaccount:platform:reports"}},
                                        }
                                    ]
                                }
                            ),
                            "tags": _tags(PRIMARY),
                        },
                    )
                ),
                _add_resource(
                    _res(
                        "aws:iam/rolePolicy:RolePolicy",
                        "reporting-read",
                        {
                            "role": "reporting-role-1234567",
                            "policy": json.dumps(
                                {
                                    "Statement": [
                                        {
                                            "Effect": "Allow",
                                            "Action": "s3:GetObject",
                                            "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/*",
                                        }
                                    ]
                                }
                            ),
                        },
                        deps={"role": [urn("aws:iam/role:Role", "reporting-role")]},
                    )
                ),
            ),
        ),
    ],
    "tenant-namespace-guarded": [
        ("a tenant namespace without its default-deny NetworkPolicy", _drop("t-acme-default-deny")),
        ("a default deny that only covers ingress", _set("t-globex-default-deny", "spec.policyTypes", ["Ingress"])),
        ("a tenant namespace without a ResourceQuota", _drop("t-globex-quota")),
        (
            "an extra allow-all NetworkPolicy beside the default deny",
            _add_resource(
                {
                    "urn": urn("kubernetes:networking.k8s.io/v1:NetworkPolicy", "t-acme-allow-all"),
                    "type": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                    "name": "t-acme-allow-all",
                    "parent": None,
                    "provider": urn("pulumi:providers:kubernetes", "eks-k8s"),
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "metadata": {"namespace": "t-acme", "name": "allow-all"},
                        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
                    },
                }
            ),
        ),
        (
            "egress to 0.0.0.0/0 without excepting the pods' private ranges",
            _add_resource(
                {
                    "urn": urn("kubernetes:networking.k8s.io/v1:NetworkPolicy", "t-acme-egress"),
                    "type": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                    "name": "t-acme-egress",
                    "parent": None,
                    "provider": urn("pulumi:providers:kubernetes", "eks-k8s"),
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "metadata": {"namespace": "t-acme", "name": "egress"},
                        "spec": {
                            "podSelector": {},
                            "policyTypes": ["Egress"],
                            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
                        },
                    },
                }
            ),
        ),
    ],
    "vpc-flow-logs-enabled": [
        (
            "a VPC without a flow log",
            _add_resource(_res("aws:ec2/vpc:Vpc", "vpc-2", {"cidrBlock": "10.1.0.0/16", "tags": _tags(PRIMARY)})),
        ),
    ],
    "eks-control-plane-logging": [
        ("the audit log switched off", _set("eks", "enabledClusterLogTypes", ["api", "authenticator"])),
    ],
    "cloudwatch-log-group-retention": [
        ("logs kept 7 days", _set("flowlogs", "retentionInDays", 7)),
        ("no retention set (kept forever, unbudgeted)", _set("flowlogs", "retentionInDays", DELETE)),
    ],
    "rds-database-operable": [
        ("the primary cluster without its log export", _set("db-primary-cluster", "enabledCloudwatchLogsExports", [])),
        ("IAM database authentication off", _set("db-dr-cluster", "iamDatabaseAuthenticationEnabled", False)),
        ("an outdated CA on an instance", _set("db-primary-0", "caCertIdentifier", "rds-ca-2019")),
        (
            "a single-AZ RDS writer",
            _add_resource(
                _res(
                    "aws:rds/instance:Instance",
                    "single-az",
                    {
                        "engine": "postgres",
                        "instanceClass": "db.t4g.medium",
                        "enabledCloudwatchLogsExports": ["postgresql"],
                        "iamDatabaseAuthenticationEnabled": True,
                        "tags": _tags(PRIMARY),
                    },
                )
            ),
        ),
    ],
    "s3-bucket-access-logging": [
        ("a bucket without access logs", _drop("pool-access-logs")),
    ],
    "backup-plan-coverage": [
        ("a bucket no backup selection covers", _drop("backup-everything")),
        (
            "a tag-based selection whose tags the data does not carry, instead of the ARN list",
            _all(
                _set("backup-everything", "resources", ["arn:aws:s3:::*"]),
                lambda rs: find(rs, "backup-everything")["propertyDependencies"].pop("resources"),
                _set(
                    "backup-everything", "conditions", [{"stringEquals": [{"key": "aws:ResourceTag/backup", "value": "daily"}]}]
                ),
            ),
        ),
        ("recovery points kept 7 days", _set("backups", "rules.0.lifecycle.deleteAfter", 7)),
    ],
    "k8s-workload-pod-security-restricted": [
        ("a privileged container", _set("t-acme-app", "spec.template.spec.containers.0.securityContext.privileged", True)),
        ("host networking", _set("t-acme-app", "spec.template.spec.hostNetwork", True)),
        (
            "a hostPath volume",
            _set("t-acme-app", "spec.template.spec.volumes", [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]),
        ),
        (
            "running as root (UID 0, runAsNonRoot dropped)",
            _all(
                _set("t-acme-app", "spec.template.spec.securityContext.runAsNonRoot", DELETE),
                _set("t-acme-app", "spec.template.spec.securityContext.runAsUser", 0),
            ),
        ),
        (
            "a bare Pod with privilege escalation left on",
            _add_resource(
                {
                    "urn": urn("kubernetes:core/v1:Pod", "debug"),
                    "type": "kubernetes:core/v1:Pod",
                    "name": "debug",
                    "parent": None,
                    "provider": urn("pulumi:providers:kubernetes", "eks-k8s"),
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "metadata": {"namespace": "platform", "name": "debug"},
                        "spec": {
                            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [
                                {"name": "sh", "image": "busybox", "securityContext": {"capabilities": {"drop": ["ALL"]}}}
                            ],
                        },
                    },
                }
            ),
        ),
    ],
    "budgets-tenant-budget-exists": [
        ("a tenant without a budget", _drop("budget-tenant-globex")),
    ],
    "budgets-stack-budget-exists": [
        ("the stack budget removed", _drop("budget-stack")),
    ],
}


def mutated(rule: str, index: int = 0) -> Resources:
    resources = valid_stack()
    MUTATIONS[rule][index][1](resources)
    return resources


# --- the other tenant identity design: one role per region through EKS Pod Identity (ABAC) ------------

NS_VARIABLE = "${aws:PrincipalTag/kubernetes-namespace}"
ABAC_CONFIG = {**CONFIG, "tenant-role-isolated": {"tenantPrefix": "tenants/t-{tenant}/"}}


def abac_stack() -> Resources:
    """The valid stack with acme's IRSA role replaced by a shared pod-identity role that tells
    tenants apart by the `kubernetes-namespace` session tag, and acme's association (with its
    own session policy) to it."""
    resources = [r for r in valid_stack() if r["name"] not in ("t-acme-role", "t-acme-data-access")]
    sa = find(resources, "t-acme-sa")
    sa["inputs"]["metadata"].pop("annotations")
    sa["propertyDependencies"], sa["dependencies"] = {}, []
    for key, ns in (("acme-key", "t-acme"), ("globex-key", "t-globex")):
        find(resources, key)["inputs"]["tags"]["meridian:namespace"] = ns
    b = _Builder()
    b.providers = {PRIMARY: urn("pulumi:providers:aws", PRIMARY)}
    pool = "arn:aws:s3:::pool-bucket-1234567"
    session = {
        "StringEquals": {"aws:PrincipalTag/eks-cluster-arn": f"arn:aws:eks:{PRIMARY}:{ACCOUNT}:cluster/eks"},
        "StringLike": {"aws:PrincipalTag/kubernetes-namespace": "t-*"},
    }
    role = b.add(
        "aws:iam/role:Role",
        "tenants-role",
        {
            "path": "/meridian/tenants/",
            "assumeRolePolicy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "pods.eks.amazonaws.com"},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                        }
                    ]
                }
            ),
        },
    )
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "tenants-abac",
        {
            "role": "tenants-role-1234567",
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Sid": "PoolObjects",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": f"{pool}/tenants/{NS_VARIABLE}/*",
                            "Condition": session,
                        },
                        {
                            "Sid": "PoolListing",
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": pool,
                            "Condition": {
                                **session,
                                "StringLike": {**session["StringLike"], "s3:prefix": [f"tenants/{NS_VARIABLE}/*"]},
                            },
                        },
                        {
                            "Sid": "SiloObjects",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": f"arn:aws:s3:::silo-{NS_VARIABLE}/*",
                            "Condition": session,
                        },
                        {
                            "Sid": "OwnKeys",
                            "Effect": "Allow",
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*",
                            "Condition": {"StringEquals": {"aws:ResourceTag/meridian:namespace": NS_VARIABLE}},
                        },
                    ]
                }
            ),
        },
        parent=role,
        deps={"role": [role], "policy": [urn("aws:s3/bucket:Bucket", "pool-bucket")]},
        tags=False,
    )
    b.add(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "t-acme-identity",
        {
            "clusterName": "eks",
            "namespace": "t-acme",
            "serviceAccount": "acme-app",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/tenants-role-1234567",
            "policy": json.dumps(
                {
                    "Statement": [
                        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{pool}/tenants/t-acme/*"},
                        {
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": pool,
                            "Condition": {"StringLike": {"s3:prefix": ["tenants/t-acme/*"]}},
                        },
                        {
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/3333-acme",
                        },
                    ]
                }
            ),
        },
        deps={"roleArn": [role], "policy": [urn("aws:s3/bucket:Bucket", "pool-bucket"), urn("aws:kms/key:Key", "acme-key")]},
        tags=_tags(PRIMARY, **{"meridian:tenant": "acme"}),
    )
    return resources + b.resources


def _abac_doc(statement: dict) -> Callable[[Resources], None]:
    return _doc("tenants-abac", statement)


ABAC_MUTATIONS: list[tuple[str, Callable[[Resources], None]]] = [
    (
        "the shared role also trusting an AWS account (which could choose its own session tags)",
        _set(
            "tenants-role",
            "assumeRolePolicy",
            json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "pods.eks.amazonaws.com", "AWS": f"arn:aws:iam::{ACCOUNT}:role/ci"},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                        }
                    ]
                }
            ),
        ),
    ),
    ("an association with session tags turned off", _set("t-acme-identity", "disableSessionTags", True)),
    ("an association chaining to another role", _set("t-acme-identity", "targetRoleArn", f"arn:aws:iam::{ACCOUNT}:role/other")),
    (
        "the namespace variable not a whole path segment",
        _abac_doc(
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::pool-bucket-1234567/tenants/*{NS_VARIABLE}/*",
            }
        ),
    ),
    (
        "a tenant prefix wildcard beside the variable",
        _abac_doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/*"}),
    ),
    (
        "every key of the region without the namespace tag condition",
        _abac_doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*"}),
    ),
    ("acme's key tagged with globex's namespace", _set("acme-key", "tags.meridian:namespace", "t-globex")),
    (
        "acme's session policy reaching globex's prefix",
        _set(
            "t-acme-identity",
            "policy",
            json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/t-globex/*",
                        }
                    ]
                }
            ),
        ),
    ),
    ("acme's association in globex's namespace", _set("t-acme-identity", "namespace", "t-globex")),
    (
        "a platform bucket whose name a namespace fills in (silo-t-acme)",
        _add_resource(_res("aws:s3/bucket:Bucket", "platform-logs", {"bucket": "silo-t-acme", "tags": _tags(PRIMARY)})),
    ),
]


# --- the reference service's broker: assumes the shared tenant role with one tenant's session tags --------

BROKER_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-broker-1234567"
_BROKER_TAGS = {
    "StringLike": {"aws:RequestTag/kubernetes-namespace": "t-*"},
    "StringEquals": {"aws:RequestTag/eks-cluster-arn": f"arn:aws:eks:{PRIMARY}:{ACCOUNT}:cluster/eks"},
    "ForAllValues:StringEquals": {"aws:TagKeys": ["kubernetes-namespace", "eks-cluster-arn"]},
}


def _broker_trust(statement: dict | None = None) -> str:
    return json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                },
                statement
                or {
                    "Effect": "Allow",
                    "Principal": {"AWS": BROKER_ARN},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": _BROKER_TAGS,
                },
            ]
        }
    )


_DB_SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-app-credential-1234567-AbCdEf"
_DB_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0000aaaa-1111-2222-3333-444455556666"


def broker_stack() -> Resources:
    """The ABAC stack whose shared tenant role also trusts the service's broker role: a pod-identity
    role held only by the service's account in the platform namespace, allowed only sts."""
    resources = abac_stack()
    b = _Builder()
    b.providers = {PRIMARY: urn("pulumi:providers:aws", PRIMARY)}
    broker = b.add(
        "aws:iam/role:Role",
        "service-broker",
        {
            "assumeRolePolicy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "pods.eks.amazonaws.com"},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                        }
                    ]
                }
            )
        },
    )
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/tenants-role-1234567"
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "service-broker-assume",
        {
            "role": "service-broker-1234567",
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                            "Resource": role_arn,
                            "Condition": _BROKER_TAGS,
                        },
                        # the service's database password (components.tenantidentity.secret_read_policy)
                        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": _DB_SECRET_ARN},
                        {
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": _DB_KEY_ARN,
                            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
                        },
                    ]
                }
            ),
        },
        parent=broker,
        deps={"role": [broker], "policy": [urn("aws:iam/role:Role", "tenants-role")]},
        tags=False,
    )
    b.add(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "service-broker-identity",
        {"clusterName": "eks", "namespace": "platform", "serviceAccount": "meridian-api", "roleArn": BROKER_ARN},
        deps={"roleArn": [broker]},
    )
    role = find(resources, "tenants-role")
    role["inputs"]["assumeRolePolicy"] = _broker_trust()
    role["propertyDependencies"] = {**role.get("propertyDependencies", {}), "assumeRolePolicy": [broker]}
    role["dependencies"] = sorted({*role.get("dependencies", []), broker})
    return resources + b.resources


_TENANT_SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:acme-token-1234567-GhIjKl"


def _broker_reads_tenant_secret(resources: Resources) -> None:
    """The broker granted a secret the stack tags as a tenant's, by its exact ARN."""
    secret = _res("aws:secretsmanager/secret:Secret", "acme-token", {"tags": _tags(PRIMARY, **{"meridian:tenant": "acme"})})
    resources.append(secret)
    _doc("service-broker-assume", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": _TENANT_SECRET_ARN})(
        resources
    )
    policy = find(resources, "service-broker-assume")
    policy["propertyDependencies"]["policy"] = [*policy["propertyDependencies"]["policy"], secret["urn"]]
    policy["dependencies"] = sorted({*policy["dependencies"], secret["urn"]})


BROKER_MUTATIONS: list[tuple[str, Callable[[Resources], None]]] = [
    ("the broker reading a tenant's secret by its exact ARN", _broker_reads_tenant_secret),
    ("the broker associated with a tenant's namespace", _set("service-broker-identity", "namespace", "t-acme")),
    (
        "the broker allowed tenant data itself",
        _doc(
            "service-broker-assume",
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"},
        ),
    ),
    (
        "the broker reading every secret",
        _doc("service-broker-assume", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}),
    ),
    (
        "the broker reading secrets by a wildcard ARN",
        _doc(
            "service-broker-assume",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:*",
            },
        ),
    ),
    (
        "the broker allowed every Secrets Manager action on its secret",
        _doc("service-broker-assume", {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": _DB_SECRET_ARN}),
    ),
    (
        "the broker reading secrets through NotResource",
        _doc(
            "service-broker-assume",
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "NotResource": _DB_SECRET_ARN},
        ),
    ),
    (
        "the broker decrypting without kms:ViaService",
        _doc("service-broker-assume", {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": _DB_KEY_ARN}),
    ),
    (
        "the broker decrypting on S3's behalf",
        _doc(
            "service-broker-assume",
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": _DB_KEY_ARN,
                "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
            },
        ),
    ),
    (
        "the broker decrypting with every key via Secrets Manager",
        _doc(
            "service-broker-assume",
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
            },
        ),
    ),
    (
        "the broker trusting an AWS account besides pod identity",
        _set(
            "service-broker",
            "assumeRolePolicy",
            json.dumps(
                {
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
                    ]
                }
            ),
        ),
    ),
    (
        "the tenant role trusting the broker without a namespace session tag condition",
        _set(
            "tenants-role",
            "assumeRolePolicy",
            _broker_trust({"Effect": "Allow", "Principal": {"AWS": BROKER_ARN}, "Action": ["sts:AssumeRole", "sts:TagSession"]}),
        ),
    ),
    (
        "the tenant role trusting a principal that is no broker of the stack",
        _set(
            "tenants-role",
            "assumeRolePolicy",
            _broker_trust(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [BROKER_ARN, f"arn:aws:iam::{ACCOUNT}:role/ci"]},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": _BROKER_TAGS,
                }
            ),
        ),
    ),
]
