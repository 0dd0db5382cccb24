"""RegionIngress: one region's front door, an internet-facing ALB splitting traffic by weight.

Why an ALB and not the NLB a LoadBalancer Service gets: a canary must get a share of *requests*,
and be judged on its own requests. NLBs gained weighted target groups (2025), but an NLB weighs
new TCP flows: an HTTP/2 or keep-alive client sends every request of a long connection to the
version its flow hashed to, so "1 %" is not 1 % of requests and a few busy clients decide the
split. The ALB weighs each request, health-checks `/healthz` over HTTP, and reports per target
group (HTTPCode_Target_5XX_Count, TargetResponseTime), which is the canary's own signal
(docs/rollout-aws.md).

- The ALB, its HTTPS listener (the region's ACM certificate, a TLS 1.3 policy) and two ip-type
  target groups, `stable` and `canary`, are Pulumi's; the AWS Load Balancer Controller only fills
  the groups with pod IPs (`TargetGroupBinding`, in components.workload).
- The listener's default action forwards to both groups by weight: 100 / 0 when created. From then
  on the weights belong to `meridian rollout` (elbv2 ModifyListener at each step): `pulumi up`
  ignores them, or every update would snap a rollout in progress back to 100 / 0.
- Security groups: the ALB's admits 443 from the internet and reaches only the pods' port inside
  the VPC; the cluster's security group admits the ALB's on that port, nothing else new.
- The ALB closes client connections after `CLIENT_KEEP_ALIVE_S` (its minimum), so a client on a
  keep-alive connection to a failed region whose ALB still answers re-resolves the name at the
  latest then (the budget's pinned-client term, stackconfig.planning).
- Access logs go to the ingress's own log bucket (components.logbucket.access_log_bucket), the only
  bucket of the stack under SSE-S3: ALB log delivery takes no other encryption. Per-target-group
  CloudWatch metrics carry what the rollout judges; the logs are the record of every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.logbucket import access_log_bucket
from components.naming import elb_logical_name
from stackconfig.planning import CLIENT_KEEP_ALIVE_S

TRACKS = ("stable", "canary")
HTTPS_PORT = 443
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # TLS 1.3 and 1.2 with forward secrecy only
HEALTH_PATH = "/healthz"
LOG_PREFIX = "alb"  # access logs land under <bucket>/alb/AWSLogs/<account>/
INITIAL_WEIGHTS = {"stable": 100, "canary": 0}
# The rollout tool owns these at runtime (see the module docstring); index = position in TRACKS.
RUNTIME_OWNED = [f"defaultActions[0].forward.targetGroups[{i}].weight" for i in range(len(TRACKS))]


@dataclass(frozen=True, kw_only=True)
class RegionIngressArgs:
    region: str
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    public_subnet_ids: Sequence[pulumi.Input[str]]
    pod_security_group_id: pulumi.Input[str]
    """The security group the pods' ENIs carry (the EKS cluster security group): admits the ALB."""
    certificate_arn: pulumi.Input[str]
    container_port: int
    access_log_retention_days: int
    """How long the ALB's access logs are kept (its own log bucket, components.logbucket)."""
    deletion_protection: bool = False
    force_destroy_logs: bool = False
    """`pulumi destroy` deletes the log bucket with its logs (config teardown.force_delete)."""

    def __post_init__(self) -> None:
        if len(self.public_subnet_ids) < 2:
            raise ValueError("an ALB needs public subnets in at least two availability zones")
        if not 1 <= self.container_port <= 65535:
            raise ValueError(f"container_port must be 1..65535, got {self.container_port}")


class RegionIngress(pulumi.ComponentResource):
    """Name it short (`components.naming.elb_prefix`): the ALB and target groups are auto-named from
    `<name>-<thing>`, which pulumi-aws refuses above 24 characters."""

    dns_name: pulumi.Output[str]
    """The ALB's canonical hosted zone: what a Route 53 alias record names."""
    load_balancer_arn: pulumi.Output[str]
    listener_arn: pulumi.Output[str]
    target_group_arns: dict[str, pulumi.Output[str]]  # "stable" / "canary"
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: RegionIngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:ingress:RegionIngress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            description=f"{name}: HTTPS from the internet to the API load balancer",
            vpc_id=args.vpc_id,
            ingress=[
                {
                    "description": "HTTPS from clients",
                    "protocol": "tcp",
                    "from_port": HTTPS_PORT,
                    "to_port": HTTPS_PORT,
                    "cidr_blocks": ["0.0.0.0/0"],
                }
            ],
            egress=[
                {
                    "description": "to the API pods (ip targets) inside the VPC",
                    "protocol": "tcp",
                    "from_port": args.container_port,
                    "to_port": args.container_port,
                    "cidr_blocks": [args.vpc_cidr],
                }
            ],
            tags={"Name": f"{name}-alb"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-pods-from-alb",
            description="API pods from the load balancer",
            security_group_id=args.pod_security_group_id,
            referenced_security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=args.container_port,
            to_port=args.container_port,
            opts=pulumi.ResourceOptions(parent=sg),
        )
        # ELB checks it can write to the bucket when logging is turned on: the bucket and its policy come first
        log_bucket, log_policy = access_log_bucket(
            f"{name}-logs",
            parent=self,
            prefix=LOG_PREFIX,
            retention_days=args.access_log_retention_days,
            force_destroy=args.force_destroy_logs,
        )
        alb = aws.lb.LoadBalancer(
            elb_logical_name(name, "api"),
            load_balancer_type="application",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=[sg.id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode="defensive",
            client_keep_alive=CLIENT_KEEP_ALIVE_S,
            idle_timeout=60,
            enable_deletion_protection=args.deletion_protection,
            access_logs={"bucket": log_bucket.bucket, "prefix": LOG_PREFIX, "enabled": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_policy]),
        )
        groups = {
            track: aws.lb.TargetGroup(
                elb_logical_name(name, track),
                target_type="ip",  # pods, by IP (VPC CNI): no node hop, the pod's own readiness counts
                port=args.container_port,
                protocol="HTTP",
                vpc_id=args.vpc_id,
                deregistration_delay=30,
                health_check={
                    "enabled": True,
                    "protocol": "HTTP",
                    "path": HEALTH_PATH,
                    "port": "traffic-port",
                    "matcher": "200",
                    "interval": 10,
                    "timeout": 5,
                    "healthy_threshold": 2,
                    "unhealthy_threshold": 2,
                },
                tags={"meridian:track": track},
                opts=child,
            )
            for track in TRACKS
        }
        listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=alb.arn,
            port=HTTPS_PORT,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[
                {
                    "type": "forward",
                    "forward": {
                        "target_groups": [{"arn": groups[t].arn, "weight": INITIAL_WEIGHTS[t]} for t in TRACKS],
                    },
                }
            ],
            # `meridian rollout` sets the weights at runtime (elbv2 ModifyListener); an update must not reset them.
            opts=pulumi.ResourceOptions(parent=alb, ignore_changes=RUNTIME_OWNED),
        )
        self.dns_name = alb.dns_name
        self.load_balancer_arn = alb.arn
        self.listener_arn = listener.arn
        self.target_group_arns = {t: g.arn for t, g in groups.items()}
        self.security_group_id = sg.id
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "load_balancer_arn": self.load_balancer_arn,
                "listener_arn": self.listener_arn,
                "target_group_arns": self.target_group_arns,
                "security_group_id": self.security_group_id,
            }
        )
