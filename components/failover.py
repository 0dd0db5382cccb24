"""Failover: Route 53 failover routing for the API name across the region pair.

An HTTPS health check per region on its load balancer's deep `/healthz`, PRIMARY and SECONDARY
failover records for the API name, and a CloudWatch alarm per health check notifying an SNS topic.
What each check means is the service's readiness for the region's role (service.store.readiness_problems):
the PRIMARY check passes while the primary region serves reads and writes; the SECONDARY check
while the dr region could take over: its service answers, its own replica is reachable (or
promoted), and its write path is what a passive region has (Aurora write forwarding on its own
secondary, or on RDS none until promotion, which is not counted against it). So the SECONDARY
alarm fires when dr could not take over, never merely because dr is passive. The check cannot see
replication lag (CloudWatch `AuroraGlobalDBReplicationLag` / `ReplicaLag`; the drills judge it).
The records are CNAMEs to each region's ALB with their own short TTL and the health check attached.
The check goes through the ALB, so a region leaves DNS when its service fails the deep check *or*
its ALB has no healthy target (the ALB answers 503). Not aliases: Route 53 answers an alias to an
ELB with the balancer's fixed 60 s TTL, which alone spends the < 60 s failover target. Each region
also has a plain CNAME of its own (`api-<region>.<zone>`, on its certificate): what a rollout loads
and judges one region through, including the one failover routing keeps idle. The failover
bound (checks + TTL + a stated margin) is computed once in `stackconfig.planning`, and validation
already refuses settings that miss the RTO target.

Route 53 publishes health-check metrics only in us-east-1, so the alarms and their topic live
there whatever the stack's zone; they carry health-check ids, never tenant data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.keys import customer_key

METRICS_REGION = "us-east-1"
ALARM_MEANING = {
    "PRIMARY": "it cannot serve reads and writes",
    "SECONDARY": "it could not take over (its service or its own replica is down)",
}
# The only resources a stack may place in METRICS_REGION outside its residency zone.
METRICS_TYPES = ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:sns/topic:Topic", "aws:kms/key:Key")


@dataclass(frozen=True, kw_only=True)
class FailoverTarget:
    region: str
    dns_name: pulumi.Input[str]
    """DNS name of the load balancer serving the API in this region."""
    regional_fqdn: str
    """The region's own name (on its certificate): reaches this region whatever the failover answers."""


@dataclass(frozen=True, kw_only=True)
class FailoverArgs:
    zone_id: pulumi.Input[str]
    fqdn: str
    primary: FailoverTarget
    secondary: FailoverTarget
    health_check_interval_s: int
    failure_threshold: int
    dns_ttl_s: int
    detection_bound_s: int
    dns_provider: aws.Provider
    """Provider for Route 53 (a global service)."""
    metrics_provider: aws.Provider
    """Provider in us-east-1, where Route 53 health-check metrics are published."""

    def __post_init__(self) -> None:
        if self.health_check_interval_s not in (10, 30):
            raise ValueError(f"Route 53 health checks run every 10 or 30 s, got {self.health_check_interval_s}")
        if not 1 <= self.failure_threshold <= 10:
            raise ValueError(f"failure_threshold must be 1..10, got {self.failure_threshold}")
        if self.dns_ttl_s < 1:
            raise ValueError(f"dns_ttl_s must be at least 1 s, got {self.dns_ttl_s}")


class Failover(pulumi.ComponentResource):
    health_check_ids: dict[str, pulumi.Output[str]]  # "PRIMARY" / "SECONDARY"
    alarm_arns: dict[str, pulumi.Output[str]]  # "PRIMARY" / "SECONDARY": a region failing its checks (FIS stop conditions)
    alarm_topic_arn: pulumi.Output[str]
    detection_bound_s: int

    def __init__(self, name: str, args: FailoverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:failover:Failover", name, None, opts)
        dns = pulumi.ResourceOptions(parent=self, provider=args.dns_provider)
        metrics = pulumi.ResourceOptions(parent=self, provider=args.metrics_provider)
        # CloudWatch cannot publish to a topic under the AWS-managed SNS key: it needs a key that admits it.
        key = customer_key(
            f"{name}-alarms-key",
            f"{args.fqdn} failover alarm notifications",
            parent=self,
            provider=args.metrics_provider,
            service_principals=["cloudwatch.amazonaws.com"],
        )
        topic = aws.sns.Topic(f"{name}-alarms", kms_master_key_id=key.id, opts=metrics)

        self.health_check_ids = {}
        self.alarm_arns = {}
        for role, target in (("PRIMARY", args.primary), ("SECONDARY", args.secondary)):
            check = aws.route53.HealthCheck(
                f"{name}-{role.lower()}-check",
                type="HTTPS",
                fqdn=target.dns_name,
                port=443,
                resource_path="/healthz",
                request_interval=args.health_check_interval_s,
                failure_threshold=args.failure_threshold,
                measure_latency=True,
                enable_sni=True,
                tags={"Name": f"{args.fqdn} {role.lower()} ({target.region})"},
                opts=dns,
            )
            aws.route53.Record(
                f"{name}-{role.lower()}-record",
                zone_id=args.zone_id,
                name=args.fqdn,
                type="CNAME",
                ttl=args.dns_ttl_s,
                records=[target.dns_name],
                set_identifier=f"{role.lower()}-{target.region}",
                failover_routing_policies=[{"type": role}],
                health_check_id=check.id,
                # Route 53 refuses a CNAME beside an A record of the same name and set identifier: a
                # change of type (from the earlier alias records) must delete the old record first.
                opts=pulumi.ResourceOptions(parent=self, provider=args.dns_provider, delete_before_replace=True),
            )
            aws.route53.Record(
                f"{name}-{target.region}-regional",
                zone_id=args.zone_id,
                name=target.regional_fqdn,
                type="CNAME",
                ttl=args.dns_ttl_s,
                records=[target.dns_name],
                opts=dns,
            )
            alarm = aws.cloudwatch.MetricAlarm(
                f"{name}-{role.lower()}-alarm",
                alarm_description=f"{args.fqdn}: {role.lower()} region {target.region} failing health checks: "
                + ALARM_MEANING[role],
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": check.id},
                statistic="Minimum",
                period=60,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="LessThanThreshold",
                treat_missing_data="breaching",
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                opts=metrics,
            )
            self.health_check_ids[role] = check.id
            self.alarm_arns[role] = alarm.arn
        self.alarm_topic_arn = topic.arn
        self.detection_bound_s = args.detection_bound_s
        self.register_outputs(
            {
                "health_check_ids": self.health_check_ids,
                "alarm_arns": self.alarm_arns,
                "alarm_topic_arn": self.alarm_topic_arn,
                "detection_bound_s": self.detection_bound_s,
            }
        )
