"""One failing example per rule of the pack, for the generated catalog (docs/policies.md).

`meridian policy --catalog` evaluates each example through the pack's own analyzer with only its
rule enabled and prints the message the rule really gives. Each example is the smallest set of
resources (and inputs) that draws that rule's message; the tests' fuller stack and every failing
case per rule live in tests/policydata. Plain data, shaped like the plan's resources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

STACK = "test"
ALLOWED_REGIONS = ["us-east-1", "us-west-2", "us-east-2"]

# The per-stack settings the rules need (as policies/config/<stack>.json carries them).
SETTINGS: dict[str, dict] = {
    "aws-resource-region-allowed": {"allowedRegions": ALLOWED_REGIONS},
    "aws-replication-destination-allowed": {"allowedRegions": ALLOWED_REGIONS},
    "aws-data-path-destination-in-zone": {"allowedRegions": ALLOWED_REGIONS},
    "provider-account-and-endpoints-in-zone": {"allowedRegions": ALLOWED_REGIONS, "accountIds": ["123456789012"]},
    "sns-subscription-endpoint-in-zone": {"allowedRegions": ALLOWED_REGIONS},
    "rds-database-dr-member": {"drRegion": "us-west-2"},
    "s3-bucket-access-logging": {"requireAccessLogs": True, "exemptBuckets": ["pool-replica-bucket"]},
    "route53-failover-record-ready": {"drRegion": "us-west-2", "rtoTargetSeconds": 60, "propagationMarginSeconds": 10},
    "lb-target-group-health-checked": {"rtoTargetSeconds": 60},
    "resource-policy-principals-in-account": {"accountIds": ["123456789012"]},
    "backup-vault-lock-enabled": {"minRetentionDays": 14, "lockMode": "compliance"},
    "budgets-limit-and-cap-enforced": {"stackCapUsd": 5000},
    "production-data-not-force-deletable": {"production": True},
}


@dataclass(frozen=True)
class Example:
    what: str  # what is wrong, as the catalog introduces the message
    resources: list[dict]


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::meridian::{type_}::{name}"


def stack_tags(region: str, **extra: str) -> dict[str, str]:
    return {
        "meridian:stack": STACK,
        "meridian:zone": "us",
        "meridian:region": region,
        "meridian:cost-center": "platform-test",
        **extra,
    }


def resource(
    type_: str,
    name: str,
    inputs: dict,
    *,
    tags: dict[str, str] | None = None,
    provider: str | None = None,
    parent: str | None = None,
    deps: dict[str, list[str]] | None = None,
) -> dict:
    """A resource as the plan records it (a `Subject.from_dict` input)."""
    return {
        "urn": urn(type_, name),
        "type": type_,
        "name": name,
        "custom": True,
        "parent": parent or urn("pulumi:pulumi:Stack", f"meridian-{STACK}"),
        "provider": provider,
        "inputs": {**inputs, "tags": tags} if tags is not None else inputs,
        "dependencies": sorted({d for ds in (deps or {}).values() for d in ds}),
        "propertyDependencies": deps or {},
    }


# rule -> its example
EXAMPLES: dict[str, Example] = {
    "aws-resource-region-allowed": Example(
        "a database cluster moved to eu-west-1 with a per-resource region",
        [
            resource("pulumi:providers:aws", "us-east-1", {"region": "us-east-1"}),
            resource("pulumi:providers:aws", "us-west-2", {"region": "us-west-2"}),
            resource(
                "aws:rds/cluster:Cluster",
                "db-primary-cluster",
                {"region": "eu-west-1"},
                provider=urn("pulumi:providers:aws", "us-east-1"),
            ),
        ],
    ),
    "aws-replication-destination-allowed": Example(
        "replication to a bucket outside the stack (literal ARN, region unknowable)",
        [
            resource(
                "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
                "pool-replication",
                {
                    "rules": [
                        {
                            "id": "all",
                            "status": "Enabled",
                            "destination": {
                                "bucket": "arn:aws:s3:::somewhere-else",
                                "storageClass": "STANDARD",
                                "encryptionConfiguration": {"replicaKmsKeyId": "arn:aws:kms:us-west-2:123456789012:key/2222-dr"},
                            },
                        }
                    ]
                },
            ),
        ],
    ),
    "aws-data-path-destination-in-zone": Example(
        "an EventBridge target on an event bus in eu-west-1",
        [
            resource("pulumi:providers:aws", "us-east-1", {"region": "us-east-1", "allowedAccountIds": ["123456789012"]}),
            resource(
                "aws:cloudwatch/eventTarget:EventTarget",
                "tenant-events",
                {"rule": "tenant-events", "arn": "arn:aws:events:eu-west-1:123456789012:event-bus/default"},
                provider=urn("pulumi:providers:aws", "us-east-1"),
            ),
        ],
    ),
    "pack-resource-type-reviewed": Example(
        "an aws-native bucket: a type no rule judges and nobody reviewed",
        [
            resource("pulumi:providers:aws-native", "us-east-1", {"region": "us-east-1"}),
            resource("aws-native:s3:Bucket", "native-bucket", {}, provider=urn("pulumi:providers:aws-native", "us-east-1")),
        ],
    ),
    "sns-subscription-endpoint-in-zone": Example(
        "a queue subscribed in another zone",
        [
            resource(
                "aws:sns/topicSubscription:TopicSubscription",
                "alerts-queue",
                {"protocol": "sqs", "endpoint": "arn:aws:sqs:eu-west-1:123456789012:alerts-intake"},
            ),
        ],
    ),
    "kms-key-rotation-and-policy": Example(
        "a key without rotation",
        [
            resource("aws:kms/key:Key", "platform-key", {"enableKeyRotation": False}),
        ],
    ),
    "lb-listener-tls": Example(
        "an HTTPS listener on the 2016 TLS policy",
        [
            resource("aws:lb/listener:Listener", "api-https", {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-2016-08"}),
        ],
    ),
    "rds-storage-encrypted": Example(
        "the primary cluster with storage encryption off",
        [
            resource("aws:rds/cluster:Cluster", "db-primary-cluster", {"storageEncrypted": False}),
        ],
    ),
    "rds-parameter-group-tls-required": Example(
        "rds.force_ssl set to 0",
        [
            resource(
                "aws:rds/clusterParameterGroup:ClusterParameterGroup",
                "db-params",
                {"family": "aurora-postgresql16", "parameters": [{"name": "rds.force_ssl", "value": "0"}]},
            ),
        ],
    ),
    "ebs-volume-encrypted": Example(
        "a volume with encryption off",
        [
            resource("aws:ebs/volume:Volume", "scratch", {"encrypted": False}),
        ],
    ),
    "eks-cluster-secrets-encrypted": Example(
        "a cluster without secrets encryption",
        [
            resource("aws:eks/cluster:Cluster", "eks", {}),
        ],
    ),
    "sns-topic-encrypted": Example(
        "a topic without a KMS key",
        [
            resource("aws:sns/topic:Topic", "alerts", {}),
        ],
    ),
    "backup-vault-encrypted": Example(
        "a vault on the default key",
        [
            resource("aws:backup/vault:Vault", "vault", {}),
        ],
    ),
    "cloudwatch-log-group-encrypted": Example(
        "a log group without a KMS key",
        [
            resource("aws:cloudwatch/logGroup:LogGroup", "flowlogs", {}),
        ],
    ),
    "s3-bucket-encrypted": Example(
        "default encryption switched to SSE-S3",
        [
            resource("aws:s3/bucket:Bucket", "pool-bucket", {}),
            resource(
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "pool-sse",
                {
                    "rules": [
                        {
                            "applyServerSideEncryptionByDefault": {
                                "sseAlgorithm": "AES256",
                                "kmsMasterKeyId": "arn:aws:kms:us-east-1:123456789012:key/1111-platform",
                            },
                            "bucketKeyEnabled": True,
                        }
                    ]
                },
                parent=urn("aws:s3/bucket:Bucket", "pool-bucket"),
            ),
        ],
    ),
    "s3-bucket-tls-only": Example(
        "the TLS-only bucket policy removed",
        [
            resource("aws:s3/bucket:Bucket", "pool-bucket", {}),
        ],
    ),
    "s3-bucket-public-access-blocked": Example(
        "the bucket made public: public access block off",
        [
            resource("aws:s3/bucket:Bucket", "pool-bucket", {}),
            resource(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                "pool-no-public",
                {"blockPublicAcls": True, "ignorePublicAcls": True, "restrictPublicBuckets": True, "blockPublicPolicy": False},
                parent=urn("aws:s3/bucket:Bucket", "pool-bucket"),
            ),
        ],
    ),
    "ec2-security-group-ingress-restricted": Example(
        "the database security group open to 0.0.0.0/0 on 5432",
        [
            resource(
                "aws:ec2/securityGroup:SecurityGroup",
                "db-sg",
                {
                    "ingress": [
                        {
                            "protocol": "tcp",
                            "fromPort": 5432,
                            "toPort": 5432,
                            "securityGroups": ["sg-nodes"],
                            "cidrBlocks": ["0.0.0.0/0"],
                        }
                    ]
                },
            ),
        ],
    ),
    "ec2-network-acl-admin-ports-closed": Example(
        "a NACL rule opening SSH to the internet",
        [
            resource(
                "aws:ec2/networkAclRule:NetworkAclRule",
                "ssh-in",
                {"protocol": "tcp", "ruleAction": "allow", "cidrBlock": "0.0.0.0/0", "toPort": 22},
            ),
        ],
    ),
    "compute-and-data-not-public": Example(
        "the writer instance made publicly accessible",
        [
            resource("aws:rds/clusterInstance:ClusterInstance", "db-primary-0", {"publiclyAccessible": True}),
        ],
    ),
    "eks-cluster-endpoint-restricted": Example(
        "the public endpoint left at the provider default (on, 0.0.0.0/0)",
        [
            resource(
                "aws:eks/cluster:Cluster",
                "eks",
                {"vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "endpointPrivateAccess": True}},
            ),
        ],
    ),
    "lb-alb-hardened": Example(
        "an ALB passing invalid header fields on",
        [
            resource("aws:lb/loadBalancer:LoadBalancer", "api-lb", {"dropInvalidHeaderFields": False}),
        ],
    ),
    "iam-policy-no-full-admin": Example(
        "a policy allowing * on *",
        [
            resource(
                "aws:iam/policy:Policy",
                "deploy",
                {
                    "policy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/eks-role-1234567"}, {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}, {"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
                },
            ),
        ],
    ),
    "iam-policy-no-service-wildcard": Example(
        "s3:* on one bucket",
        [
            resource(
                "aws:iam/policy:Policy",
                "deploy",
                {
                    "policy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/eks-role-1234567"}, {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}, {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::pool-bucket-1234567"}]}'
                },
            ),
        ],
    ),
    "iam-policy-no-passrole-wildcard": Example(
        "iam:PassRole on every role",
        [
            resource(
                "aws:iam/policy:Policy",
                "deploy",
                {
                    "policy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/eks-role-1234567"}, {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}, {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}'
                },
            ),
        ],
    ),
    "iam-principal-no-admin-policy": Example(
        "AdministratorAccess attached to a workload role",
        [
            resource(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "eks-role-cluster",
                {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            ),
        ],
    ),
    "iam-role-trust-restricted": Example(
        "a role anyone may assume",
        [
            resource(
                "aws:iam/role:Role",
                "eks-role",
                {
                    "assumeRolePolicy": '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}'
                },
            ),
        ],
    ),
    "aws-resource-required-tags": Example(
        "a log group without its cost-center tag",
        [
            resource("pulumi:providers:aws", "us-west-2", {}),
            resource(
                "aws:cloudwatch/logGroup:LogGroup",
                "flowlogs",
                {},
                tags={"meridian:stack": "test", "meridian:zone": "us", "meridian:region": "us-east-1"},
            ),
        ],
    ),
    "rds-deletion-protection-enabled": Example(
        "the primary cluster without deletion protection",
        [
            resource("aws:rds/cluster:Cluster", "db-primary-cluster", {}),
        ],
    ),
    "production-data-not-force-deletable": Example(
        "a production stack's backup vault that `pulumi destroy` empties",
        [
            resource("aws:backup/vault:Vault", "vault", {"forceDestroy": True}),
        ],
    ),
    "rds-backup-retention-sufficient": Example(
        "backups kept 3 days",
        [
            resource("aws:rds/cluster:Cluster", "db-primary-cluster", {"backupRetentionPeriod": 3}),
        ],
    ),
    "backup-vault-lock-enabled": Example(
        "a vault without a lock",
        [
            resource("aws:backup/vault:Vault", "vault", {}),
        ],
    ),
    "s3-bucket-versioning-enabled": Example(
        "versioning suspended",
        [
            resource("aws:s3/bucket:Bucket", "pool-bucket", {}),
            resource(
                "aws:s3/bucketVersioning:BucketVersioning",
                "pool-versioning",
                {"versioningConfiguration": {"status": "Suspended"}},
                parent=urn("aws:s3/bucket:Bucket", "pool-bucket"),
            ),
        ],
    ),
    "route53-failover-record-ready": Example(
        "the PRIMARY record's health check removed",
        [
            resource(
                "aws:route53/record:Record",
                "primary-record",
                {"name": "api.test.meridian.example.com", "failoverRoutingPolicies": [{"type": "PRIMARY"}]},
            ),
        ],
    ),
    "rds-database-dr-member": Example(
        "the dr cluster removed from the global database",
        [
            resource("aws:rds/globalCluster:GlobalCluster", "db-global", {}),
        ],
    ),
    "lb-target-group-health-checked": Example(
        "the canary target group with its health check off",
        [
            resource(
                "aws:lb/targetGroup:TargetGroup",
                "api-canary",
                {"healthCheck": {"enabled": False, "protocol": "HTTP", "path": "/healthz", "matcher": "200", "interval": 10}},
            ),
        ],
    ),
    "tenant-role-isolated": Example(
        "the tenant role widened to every object in the bucket",
        [
            resource("aws:iam/role:Role", "t-acme-role", {}, tags=stack_tags("us-east-1", **{"meridian:tenant": "acme"})),
            resource(
                "aws:iam/rolePolicy:RolePolicy",
                "t-acme-data-access",
                {
                    "policy": '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"}]}'
                },
                parent=urn("aws:iam/role:Role", "t-acme-role"),
            ),
        ],
    ),
    "tenant-data-access": Example(
        "the pool bucket's policy letting another account read under the tenant prefixes",
        [
            resource(
                "kubernetes:core/v1:Namespace",
                "t-acme-ns",
                {"metadata": {"name": "t-acme", "labels": {"meridian.io/tenant": "acme"}}},
            ),
            resource("aws:kms/key:Key", "acme-key", {}, tags=stack_tags("us-east-1", **{"meridian:tenant": "acme"})),
            resource(
                "aws:kms/alias:Alias",
                "acme-key-alias",
                {"name": "alias/t-acme", "targetKeyId": "arn:aws:kms:us-east-1:123456789012:key/3333-acme"},
                deps={"targetKeyId": [urn("aws:kms/key:Key", "acme-key")]},
            ),
            resource("aws:s3/bucket:Bucket", "pool-bucket", {"bucket": "pool-bucket-1234567"}, tags=stack_tags("us-east-1")),
            resource(
                "aws:s3/bucketPolicy:BucketPolicy",
                "pool-policy",
                {
                    "bucket": "pool-bucket-1234567",
                    "policy": '{"Statement": [{"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, '
                    '"Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/*"}]}',
                },
                deps={"bucket": [urn("aws:s3/bucket:Bucket", "pool-bucket")]},
            ),
        ],
    ),
    "tenant-namespace-guarded": Example(
        "a tenant namespace without its default-deny NetworkPolicy",
        [
            resource(
                "kubernetes:core/v1:Namespace",
                "t-acme-ns",
                {"metadata": {"name": "t-acme", "labels": {"meridian.io/tenant": "acme", "meridian.io/plan": "pro"}}},
            ),
        ],
    ),
    "budgets-tenant-budget-exists": Example(
        "a tenant without a budget",
        [
            resource("aws:kms/key:Key", "globex-key", {}, tags=stack_tags("us-east-1", **{"meridian:tenant": "globex"})),
        ],
    ),
    "budgets-stack-budget-exists": Example(
        "the stack budget removed",
        [
            resource("aws:route53/healthCheck:HealthCheck", "secondary-check", {}, tags=stack_tags("us-east-1")),
        ],
    ),
    "vpc-flow-logs-enabled": Example(
        "a VPC without a flow log",
        [
            resource("aws:ec2/vpc:Vpc", "vpc-2", {}),
        ],
    ),
    "eks-control-plane-logging": Example(
        "the audit log switched off",
        [
            resource("aws:eks/cluster:Cluster", "eks", {"enabledClusterLogTypes": ["api", "authenticator"]}),
        ],
    ),
    "cloudwatch-log-group-retention": Example(
        "logs kept 7 days",
        [
            resource("aws:cloudwatch/logGroup:LogGroup", "flowlogs", {"retentionInDays": 7}),
        ],
    ),
    "rds-database-operable": Example(
        "the primary cluster without its log export",
        [
            resource(
                "aws:rds/cluster:Cluster",
                "db-primary-cluster",
                {"engine": "aurora-postgresql", "enabledCloudwatchLogsExports": []},
            ),
        ],
    ),
    "s3-bucket-access-logging": Example(
        "a bucket without access logs",
        [
            resource("aws:s3/bucket:Bucket", "pool-bucket", {}),
        ],
    ),
    "backup-plan-coverage": Example(
        "a database cluster no backup selection covers",
        [
            resource("aws:rds/cluster:Cluster", "db-primary-cluster", {}),
        ],
    ),
    "k8s-workload-pod-security-restricted": Example(
        "a privileged container",
        [
            resource(
                "kubernetes:apps/v1:Deployment",
                "t-acme-app",
                {
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
                                            "privileged": True,
                                        },
                                    }
                                ],
                            },
                        },
                    }
                },
            ),
        ],
    ),
    "data-store-customer-key": Example(
        "an ECR repository on AES256",
        [resource("aws:ecr/repository:Repository", "images", {"encryptionConfigurations": [{"encryptionType": "AES256"}]})],
    ),
    "resource-policy-principals-in-account": Example(
        "a key policy open to `*` under only a kms:ViaService condition",
        [
            resource(
                "aws:kms/keyPolicy:KeyPolicy",
                "platform-key-policy",
                {
                    "keyId": "1111-platform",
                    "policy": json.dumps(
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": {"AWS": "*"},
                                    "Action": "kms:Decrypt",
                                    "Resource": "*",
                                    "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
                                }
                            ]
                        }
                    ),
                },
            )
        ],
    ),
    "ec2-subnet-public-ip-unused": Example(
        "an instance in a subnet that maps public IPs on launch",
        [
            resource("aws:ec2/subnet:Subnet", "public-a", {"cidrBlock": "10.0.0.0/24", "mapPublicIpOnLaunch": True}),
            resource(
                "aws:ec2/instance:Instance",
                "bastion",
                {"ami": "ami-1", "subnetId": "subnet-1"},
                deps={"subnetId": [urn("aws:ec2/subnet:Subnet", "public-a")]},
            ),
        ],
    ),
    "s3-lifecycle-keeps-retention": Example(
        "a lifecycle rule expiring the pool's objects after a day",
        [
            resource("aws:s3/bucket:Bucket", "pool-bucket", {}),
            resource(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "pool-lifecycle",
                {"bucket": "pool-bucket-1234567", "rules": [{"id": "expire", "status": "Enabled", "expiration": {"days": 1}}]},
                deps={"bucket": [urn("aws:s3/bucket:Bucket", "pool-bucket")]},
            ),
        ],
    ),
    "eks-access-platform-roles-only": Example(
        "an access entry for a tenant's role that joins system:masters",
        [
            resource(
                "aws:eks/accessEntry:AccessEntry",
                "eks-access-tenant",
                {
                    "clusterName": "eks",
                    "principalArn": "arn:aws:iam::123456789012:role/meridian/tenants/tenant-identity",
                    "type": "STANDARD",
                    "kubernetesGroups": ["system:masters"],
                },
            )
        ],
    ),
    "eks-node-metadata-pods-blocked": Example(
        "EKS nodes launched from a template whose IMDS token response makes two hops",
        [
            resource(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "nodes-lt",
                {"metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 2}},
            ),
            resource(
                "aws:eks/nodeGroup:NodeGroup",
                "nodes",
                {"clusterName": "eks", "launchTemplate": {"id": "lt-0123456789abcdef0", "version": "1"}},
                deps={"launchTemplate": [urn("aws:ec2/launchTemplate:LaunchTemplate", "nodes-lt")]},
            ),
        ],
    ),
    "runtime-backstops-enforced": Example(
        "the account-level S3 public access block with its policy checks turned off",
        [
            resource(
                "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
                "account-no-public",
                {"blockPublicAcls": True, "blockPublicPolicy": False, "ignorePublicAcls": True, "restrictPublicBuckets": False},
            )
        ],
    ),
    "budgets-limit-and-cap-enforced": Example(
        "a tenant budget of 1e9 USD",
        [
            resource(
                "aws:budgets/budget:Budget",
                "tenant-acme",
                {
                    "budgetType": "COST",
                    "timeUnit": "MONTHLY",
                    "limitAmount": "1000000000.00",
                    "limitUnit": "USD",
                    "costFilters": [{"name": "TagKeyValue", "values": ["user:meridian:tenant$acme"]}],
                },
            )
        ],
    ),
    "k8s-service-internal-only": Example(
        "a LoadBalancer Service in a tenant namespace",
        [
            resource(
                "kubernetes:core/v1:Service",
                "open",
                {"metadata": {"namespace": "t-acme", "name": "open"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
            )
        ],
    ),
    "helm-release-allowlisted": Example(
        "a Helm release of a chart nobody reviewed",
        [
            resource(
                "kubernetes:helm.sh/v3:Release",
                "ingress",
                {"chart": "ingress-nginx", "repositoryOpts": {"repo": "https://kubernetes.github.io/ingress-nginx"}},
            )
        ],
    ),
    "provider-account-and-endpoints-in-zone": Example(
        "a provider sending S3 calls to eu-west-1 and assuming a role of another account",
        [
            resource(
                "pulumi:providers:aws",
                "us-east-1",
                {
                    "region": "us-east-1",
                    "allowedAccountIds": ["123456789012"],
                    "endpoints": [{"s3": "https://s3.eu-west-1.amazonaws.com"}],
                    "assumeRoles": [{"roleArn": "arn:aws:iam::999988887777:role/deployer"}],
                },
            )
        ],
    ),
    "rds-data-api-disabled": Example(
        "an Aurora cluster with the Data API on",
        [resource("aws:rds/cluster:Cluster", "db-primary-cluster", {"enableHttpEndpoint": True})],
    ),
    "eks-addon-reviewed": Example(
        "a vendor's telemetry add-on",
        [
            resource(
                "aws:eks/addon:Addon",
                "datadog",
                {"addonName": "datadog_operator", "clusterName": "prod", "configurationValues": '{"site": "datadoghq.com"}'},
            )
        ],
    ),
    "k8s-tenant-secret-own-data-only": Example(
        "the platform's database credential copied into a tenant namespace",
        [
            resource(
                "kubernetes:core/v1:Namespace",
                "t-acme-ns",
                {"metadata": {"name": "t-acme", "labels": {"meridian.io/tenant": "acme"}}},
            ),
            resource("aws:secretsmanager/secret:Secret", "db-credential", {}, tags=stack_tags("us-east-1")),
            resource(
                "kubernetes:core/v1:Secret",
                "acme-db",
                {"metadata": {"name": "db", "namespace": "t-acme"}, "stringData": {"password": "[secret]"}},
                deps={"stringData": [urn("aws:secretsmanager/secret:Secret", "db-credential")]},
            ),
        ],
    ),
    "k8s-target-group-binding-platform-only": Example(
        "a tenant's pods bound to another account's target group",
        [
            resource("pulumi:providers:aws", "us-east-1", {"region": "us-east-1", "allowedAccountIds": ["123456789012"]}),
            resource(
                "kubernetes:core/v1:Namespace",
                "t-acme-ns",
                {"metadata": {"name": "t-acme", "labels": {"meridian.io/tenant": "acme"}}},
            ),
            resource(
                "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
                "acme-exposed",
                {
                    "metadata": {"name": "acme", "namespace": "t-acme"},
                    "spec": {
                        "serviceRef": {"name": "acme", "port": 80},
                        "targetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:999988887777:targetgroup/x/1",
                    },
                },
            ),
        ],
    ),
    "k8s-rbac-binding-scoped": Example(
        "a ClusterRoleBinding of `view` to a tenant's service account",
        [
            resource(
                "kubernetes:core/v1:Namespace",
                "t-acme-ns",
                {"metadata": {"name": "t-acme", "labels": {"meridian.io/tenant": "acme"}}},
            ),
            resource(
                "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
                "acme-view-all",
                {
                    "metadata": {"name": "acme-view-all"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                    "subjects": [{"kind": "ServiceAccount", "name": "acme-app", "namespace": "t-acme"}],
                },
            ),
        ],
    ),
}
