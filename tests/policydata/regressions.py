"""Issue 23's misses and false positives in semantics, exposure, encryption and workloads, each a
minimal mutation of the valid stack: `CAUGHT` must draw its rule's mandatory violation, `ADMITTED`
(a legitimate setup the pack used to block) must pass the whole pack. Written as an attacker or a
careless teammate would write them: the check present, but disabled, pointing elsewhere, or
satisfied in form only."""

from __future__ import annotations

import json

from .base import (
    ACCOUNT,
    DR,
    K8S,
    PRIMARY,
    Mutation,
    Resources,
    add,
    arn,
    find,
    resource,
    set_input,
    stack_tags,
    together,
    urn,
)
from .datastores import FOREIGN, ORG, doc
from .failover import elb
from .storage import POOL

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def k8s(type_: str, name: str, inputs: dict) -> dict:
    return {
        "urn": urn(type_, name),
        "type": type_,
        "name": name,
        "parent": None,
        "provider": K8S,
        "dependencies": [],
        "propertyDependencies": {},
        "inputs": inputs,
    }


def netpol(name: str, spec: dict) -> Mutation:
    return add(k8s(NETPOL, name, {"metadata": {"namespace": "t-acme", "name": name}, "spec": {"podSelector": {}, **spec}}))


def policy_of(name: str, *statements: dict, field: str = "policy") -> Mutation:
    return set_input(name, field, doc(*statements))


def link(name: str, prop: str, *targets: str) -> Mutation:
    def mutate(resources: Resources) -> None:
        r = find(resources, name)
        r["propertyDependencies"][prop] = list(targets)
        r["dependencies"] = sorted({*r["dependencies"], *targets})

    return mutate


def unlink(name: str, prop: str) -> Mutation:
    return lambda resources: find(resources, name)["propertyDependencies"].pop(prop, None)


ROOT_VOLUME_OPEN = {"rootBlockDevice": {"encrypted": False}, "associatePublicIpAddress": True}
POOL_TLS_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::someone-elses-bucket", "arn:aws:s3:::someone-elses-bucket/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
PRIVILEGED_POD = {
    "containers": [{"name": "x", "image": "busybox", "securityContext": {"privileged": True}}],
}

# (rule that must catch it, what, mutation)
CAUGHT: list[tuple[str, str, Mutation]] = [
    # --- semantics over presence: failover
    ("route53-failover-record-ready", "a disabled health check", set_input("primary-check", "disabled", True)),
    ("route53-failover-record-ready", "an inverted health check", set_input("primary-check", "invertHealthcheck", True)),
    (
        "route53-failover-record-ready",
        "the PRIMARY's health check probes the dr region's load balancer",
        set_input("primary-check", "fqdn", elb(DR)),
    ),
    (
        "route53-failover-record-ready",
        "the SECONDARY answers with the primary region",
        set_input("secondary-record", "records", [elb(PRIMARY)]),
    ),
    ("route53-failover-record-ready", "a failover TTL of 300 s", set_input("primary-record", "ttl", 300)),
    (
        "route53-failover-record-ready",
        "checks every 30 s x 10 (detection outlasts the RTO target)",
        together(set_input("primary-check", "requestInterval", 30), set_input("primary-check", "failureThreshold", 10)),
    ),
    (
        "route53-failover-record-ready",
        "a calculated health check with no child: probes nothing",
        set_input("primary-check", "type", "CALCULATED"),
    ),
    # --- backups, copies, vault lock, lifecycle
    (
        "backup-plan-coverage",
        "a backup selection whose notResources exclude the pool bucket (ARN pattern)",
        set_input("backup-everything", "notResources", ["arn:aws:s3:::pool-*"]),
    ),
    (
        "backup-plan-coverage",
        "a backup selection whose notResources exclude the pool bucket (by reference)",
        together(
            set_input("backup-everything", "notResources", ["arn:aws:s3:::pool-bucket-1234567"]),
            link("backup-everything", "notResources", POOL),
        ),
    ),
    (
        "backup-plan-coverage",
        "a tag selection whose ARN list names only DynamoDB",
        together(
            set_input("backup-everything", "resources", [f"arn:aws:dynamodb:{PRIMARY}:{ACCOUNT}:table/*"]),
            unlink("backup-everything", "resources"),
            set_input(
                "backup-everything",
                "conditions",
                [{"stringEquals": [{"key": "aws:ResourceTag/meridian:stack", "value": "test"}]}],
            ),
        ),
    ),
    (
        "backup-plan-coverage",
        "the cross-region copy kept 1 day",
        set_input("backups", "rules.0.copyActions.0.lifecycle.deleteAfter", 1),
    ),
    (
        "backup-vault-lock-enabled",
        "a vault lock without `changeableForDays` (governance mode)",
        set_input("test-vault-lock", "changeableForDays", None),
    ),
    (
        "s3-lifecycle-keeps-retention",
        "a lifecycle rule expiring data after a day, on a BucketV2's inline rules",
        add(
            resource(
                "aws:s3/bucketV2:BucketV2",
                "scratch-bucket",
                {"lifecycleRules": [{"enabled": True, "expirations": [{"days": 1}]}], "tags": stack_tags(PRIMARY)},
            )
        ),
    ),
    ("s3-bucket-tls-only", "the pool's TLS deny written for another bucket", policy_of("pool-tls-only", POOL_TLS_DENY)),
    (
        "s3-bucket-tls-only",
        "a TLS deny on the bucket but not its objects",
        policy_of("pool-tls-only", {**POOL_TLS_DENY, "Resource": "arn:aws:s3:::pool-bucket-1234567"}),
    ),
    ("budgets-limit-and-cap-enforced", "a budget of 1e9", set_input("budget-stack", "limitAmount", "1000000000")),
    (
        "rds-deletion-protection-enabled",
        "the writer cluster skips its final snapshot",
        set_input("db-primary-cluster", "skipFinalSnapshot", True),
    ),
    # --- resource policies
    # a service principal acts for whichever account's resource calls it: unpinned, a confused deputy
    (
        "resource-policy-principals-in-account",
        "a queue policy letting SNS send with no source condition (confused deputy)",
        policy_of(
            "events-policy",
            {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": "*"},
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "a queue policy letting EventBridge send, pinned only by StringEqualsIfExists aws:SourceAccount",
        policy_of(
            "events-policy",
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": "*",
                "Condition": {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}},
            },
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "a key policy letting CloudWatch Logs use the key for log groups of any account (ArnLike *)",
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{PRIMARY}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:logs:*:*:*"}},
            },
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "a key policy letting SNS use the key for a foreign account's topics",
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": FOREIGN}},
            },
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "a key policy with `Principal: *` constrained only by kms:ViaService",
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{PRIMARY}.amazonaws.com"}},
            },
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "a key policy: Allow with NotPrincipal",
        policy_of(
            "platform-key-policy",
            {"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "`*` pinned with an IfExists condition (absent key passes)",
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEqualsIfExists": {"aws:PrincipalAccount": ACCOUNT}},
            },
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "`*` pinned to a foreign account",
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": FOREIGN}},
            },
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "aws:kms/keyPolicy with `Principal: *`",
        policy_of("platform-key-policy", {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}),
    ),
    (
        "resource-policy-principals-in-account",
        "a queue policy open to a foreign account's root by bare id",
        policy_of("events-policy", {"Effect": "Allow", "Principal": {"AWS": FOREIGN}, "Action": "sqs:*", "Resource": "*"}),
    ),
    (
        "resource-policy-principals-in-account",
        '`*` "pinned" by StringLike aws:PrincipalAccount `*`',
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:PrincipalAccount": "*"}},
            },
        ),
    ),
    (
        "resource-policy-principals-in-account",
        "a foreign role listed beside the own root in one statement",
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{FOREIGN}:role/reader"]},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ),
    ),
    ("budgets-limit-and-cap-enforced", "a budget in another currency unit", set_input("budget-tenant-acme", "limitUnit", "JPY")),
    (
        "budgets-limit-and-cap-enforced",
        "a hard cap that fires at 1000 % of the limit",
        set_input("budget-tenant-acme-cap", "actionThreshold.actionThresholdValue", 1000),
    ),
    (
        "s3-lifecycle-keeps-retention",
        "a lifecycle rule expiring everything on a fixed date",
        add(
            resource(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "pool-dated-expiry",
                {
                    "bucket": "pool-bucket-1234567",
                    "rules": [{"id": "d", "status": "Enabled", "expiration": {"date": "2027-01-01"}}],
                },
                deps={"bucket": [POOL]},
            )
        ),
    ),
    (
        "route53-failover-record-ready",
        "the health check probes the right host through another resource's output",
        together(
            set_input("primary-check", "fqdn", "status.example.com"),
            link("primary-check", "fqdn", urn("aws:route53/zone:Zone", "zone")),
        ),
    ),
    # --- encryption
    ("data-store-customer-key", "a secret without kmsKeyId", set_input("db-credential", "kmsKeyId", None)),
    (
        "data-store-customer-key",
        "a secret on the AWS-managed alias",
        set_input("db-credential", "kmsKeyId", "alias/aws/secretsmanager"),
    ),
    ("data-store-customer-key", "ECR AES256", set_input("images", "encryptionConfigurations.0", {"encryptionType": "AES256"})),
    (
        "data-store-customer-key",
        "SQS with managed SSE",
        together(set_input("events", "kmsMasterKeyId", None), set_input("events", "sqsManagedSseEnabled", True)),
    ),
    (
        "ebs-volume-encrypted",
        "a spot request with an unencrypted root volume",
        add(resource("aws:ec2/spotInstanceRequest:SpotInstanceRequest", "spot", {"ami": "ami-1", **ROOT_VOLUME_OPEN})),
    ),
    (
        "ebs-volume-encrypted",
        "a launch configuration with an unencrypted root volume",
        add(
            resource(
                "aws:ec2/launchConfiguration:LaunchConfiguration",
                "lc",
                {"imageId": "ami-1", "instanceType": "t3.micro", **ROOT_VOLUME_OPEN},
            )
        ),
    ),
    (
        "lb-listener-tls",
        "a classic ELB with an HTTP listener",
        add(
            resource(
                "aws:elb/loadBalancer:LoadBalancer",
                "classic",
                {"listeners": [{"lbPort": 80, "lbProtocol": "http", "instancePort": 8080, "instanceProtocol": "http"}]},
            )
        ),
    ),
    # --- exposure
    (
        "ec2-security-group-ingress-restricted",
        "a managed prefix list of 0.0.0.0/0 used by a 5432 ingress",
        together(
            add(
                resource(
                    "aws:ec2/managedPrefixList:ManagedPrefixList",
                    "anywhere",
                    {"addressFamily": "IPv4", "maxEntries": 1, "entries": [{"cidr": "0.0.0.0/0"}]},
                )
            ),
            add(
                resource(
                    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                    "db-from-list",
                    {"securityGroupId": "sg-db", "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "prefixListId": "pl-1"},
                    deps={"prefixListId": [urn("aws:ec2/managedPrefixList:ManagedPrefixList", "anywhere")]},
                )
            ),
        ),
    ),
    (
        "ec2-security-group-ingress-restricted",
        "an IPv6 ::/0 rule built from the VPC (a dependency does not make it the VPC's block)",
        add(
            resource(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                "db-from-v6",
                {"securityGroupId": "sg-db", "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv6": "::/0"},
                deps={"cidrIpv6": [urn("aws:ec2/vpc:Vpc", "vpc")]},
            )
        ),
    ),
    (
        "ec2-subnet-public-ip-unused",
        "mapPublicIpOnLaunch + an instance that does not refuse it",
        together(
            add(
                resource(
                    "aws:ec2/subnet:Subnet",
                    "public-b",
                    {"vpcId": "vpc-1", "cidrBlock": "10.0.1.0/24", "mapPublicIpOnLaunch": True},
                )
            ),
            add(
                resource(
                    "aws:ec2/instance:Instance",
                    "worker",
                    {"ami": "ami-1", "subnetId": "s"},
                    deps={"subnetId": [urn("aws:ec2/subnet:Subnet", "public-b")]},
                )
            ),
        ),
    ),
    (
        "compute-and-data-not-public",
        "a spot request with a public IP",
        add(
            resource(
                "aws:ec2/spotInstanceRequest:SpotInstanceRequest",
                "spot-public",
                {"ami": "ami-1", "associatePublicIpAddress": True},
            )
        ),
    ),
    (
        "compute-and-data-not-public",
        "a launch configuration with a public IP",
        add(
            resource(
                "aws:ec2/launchConfiguration:LaunchConfiguration",
                "lc-public",
                {"imageId": "ami-1", "instanceType": "t3.micro", "associatePublicIpAddress": True},
            )
        ),
    ),
    (
        "compute-and-data-not-public",
        "a Lambda function URL with auth NONE",
        add(resource("aws:lambda/functionUrl:FunctionUrl", "fn-url", {"functionName": "fn", "authorizationType": "NONE"})),
    ),
    # --- Kubernetes
    (
        "tenant-namespace-guarded",
        "a tenant NetworkPolicy admitting `kubernetes.io/metadata.name Exists` (every namespace)",
        netpol(
            "from-everywhere",
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "Exists"}]
                                }
                            }
                        ]
                    }
                ],
            },
        ),
    ),
    (
        "tenant-namespace-guarded",
        "a tenant NetworkPolicy admitting `NotIn [t-acme]` (every other namespace)",
        netpol(
            "from-others",
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["t-acme"]}
                                    ]
                                }
                            }
                        ]
                    }
                ],
            },
        ),
    ),
    (
        "tenant-namespace-guarded",
        "a tenant NetworkPolicy admitting the other tenant by name",
        netpol(
            "from-globex",
            {
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "t-globex"}}}]}],
            },
        ),
    ),
    (
        "tenant-namespace-guarded",
        "a tenant NetworkPolicy admitting namespaces by a label other tenants share (review O09)",
        netpol(
            "to-enterprise",
            {
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"meridian.io/plan": "enterprise"}}}]}],
            },
        ),
    ),
    (
        "tenant-namespace-guarded",
        "egress ipBlocks 0.0.0.0/1 + 128.0.0.0/1",
        netpol(
            "halves",
            {
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}]}],
            },
        ),
    ),
    (
        "k8s-workload-pod-security-restricted",
        "a privileged DeploymentPatch",
        add(
            k8s(
                "kubernetes:apps/v1:DeploymentPatch",
                "t-acme-app-patch",
                {"metadata": {"namespace": "t-acme", "name": "app"}, "spec": {"template": {"spec": PRIVILEGED_POD}}},
            )
        ),
    ),
    (
        "k8s-workload-pod-security-restricted",
        "a privileged ReplicationController",
        add(
            k8s(
                "kubernetes:core/v1:ReplicationController",
                "t-acme-rc",
                {"metadata": {"namespace": "t-acme", "name": "rc"}, "spec": {"template": {"spec": PRIVILEGED_POD}}},
            )
        ),
    ),
    (
        "k8s-workload-pod-security-restricted",
        "a hostPath in a CronJobPatch",
        add(
            k8s(
                "kubernetes:batch/v1:CronJobPatch",
                "t-acme-cron-patch",
                {
                    "metadata": {"namespace": "t-acme", "name": "cron"},
                    "spec": {
                        "jobTemplate": {"spec": {"template": {"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}}}
                    },
                },
            )
        ),
    ),
]

# (what, mutation): legitimate setups that must pass the whole pack
ADMITTED: list[tuple[str, Mutation]] = [
    (
        "a key policy letting CloudWatch Logs use the key for this account's log groups (aws:SourceArn)",
        policy_of(
            "platform-key-policy",
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{PRIMARY}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:logs:{PRIMARY}:{ACCOUNT}:log-group:*"}},
            },
        ),
    ),
    (
        "a queue policy letting EventBridge send from one rule of this account",
        policy_of(
            "events-policy",
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:events:{PRIMARY}:{ACCOUNT}:rule/alerts"}},
            },
        ),
    ),
    (
        # the valid stack's own ALB log bucket is SSE-S3 (network.alb_log_bucket); here it takes the connection logs too
        "an ALB access-log bucket with SSE-S3 (the only encryption ALB log delivery takes), for connection logs as well",
        together(
            set_input("api-lb", "connectionLogs", {"bucket": "api-lb-logs-bucket-1234567", "enabled": True, "prefix": "alb"}),
            link("api-lb", "connectionLogs", urn("aws:s3/bucket:Bucket", "api-lb-logs-bucket")),
        ),
    ),
    (
        "DB ingress from the VPC's own IPv6 /56",
        add(
            resource(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                "db-from-vpc-v6",
                {
                    "securityGroupId": "sg-db",
                    "ipProtocol": "tcp",
                    "fromPort": 5432,
                    "toPort": 5432,
                    "cidrIpv6": "2600:1f18:1234:5600::/56",
                    "tags": stack_tags(PRIMARY),
                },
                deps={"cidrIpv6": [urn("aws:ec2/vpc:Vpc", "vpc")]},
            )
        ),
    ),
    (
        "a BucketV2 with inline KMS encryption and versioning",
        lambda rs: _bucket_v2_inline(rs),
    ),
    (
        "a PRIMARY alias record with evaluateTargetHealth and no health check",
        together(
            set_input("primary-record", "healthCheckId", None),
            unlink("primary-record", "healthCheckId"),
            set_input("primary-record", "records", None),
            set_input("primary-record", "ttl", None),
            set_input(
                "primary-record", "aliases", [{"name": elb(PRIMARY), "zoneId": "Z35SXDOTRQ7X7K", "evaluateTargetHealth": True}]
            ),
        ),
    ),
    (
        "a secret policy with `Principal: *` pinned by aws:PrincipalOrgID",
        policy_of(
            "db-credential-policy",
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            },
        ),
    ),
    (
        "a tenant NetworkPolicy admitting kube-system by name and the internet except the private ranges",
        netpol(
            "dns-and-internet",
            {
                "policyTypes": ["Egress"],
                "egress": [
                    {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]},
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}]},
                ],
            },
        ),
    ),
    (
        "a DeploymentPatch that only changes replicas",
        add(
            k8s(
                "kubernetes:apps/v1:DeploymentPatch",
                "t-acme-scale",
                {"metadata": {"namespace": "t-acme", "name": "app"}, "spec": {"replicas": 3}},
            )
        ),
    ),
]


def _bucket_v2_inline(resources: Resources) -> None:
    """The pool replica as a BucketV2 holding its encryption and versioning inline (no sub-resources)."""
    bucket = find(resources, "pool-replica-bucket")
    old = bucket["urn"]
    bucket["type"] = "aws:s3/bucketV2:BucketV2"
    bucket["urn"] = urn("aws:s3/bucketV2:BucketV2", "pool-replica-bucket")
    bucket["inputs"].update(
        {
            "bucket": "pool-replica-bucket-1234567",
            "serverSideEncryptionConfigurations": [
                {
                    "rules": [
                        {
                            "applyServerSideEncryptionByDefaults": [
                                {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": arn("kms", DR, "key/2222-dr")}
                            ]
                        }
                    ]
                }
            ],
            "versionings": [{"enabled": True}],
        }
    )
    resources[:] = [r for r in resources if r["name"] not in ("pool-replica-sse", "pool-replica-versioning")]
    text = json.dumps(resources).replace(old, bucket["urn"])
    resources[:] = json.loads(text)
