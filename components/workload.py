"""Workload: the reference service in one region's cluster, behind a TLS network load balancer.

A `platform` namespace, the database credentials as a Secret, a Deployment (non-root, read-only
root filesystem, deep `/healthz` probes) spread over zones, a PodDisruptionBudget, and a
LoadBalancer Service that the cloud controller turns into an internet-facing NLB terminating
TLS with the region's ACM certificate. The NLB hostname is what the Route 53 health checks watch.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

NAMESPACE = "platform"
APP = "meridian-api"


@dataclass(frozen=True, kw_only=True)
class WorkloadArgs:
    region: str
    role: str
    """`primary` or `dr`: the service reads locally and writes to `db_writer` either way."""
    image: str
    replicas: int
    container_port: int
    certificate_arn: pulumi.Input[str]
    db_writer: pulumi.Input[str]
    db_reader: pulumi.Input[str]
    db_user: str
    db_password: pulumi.Input[str]

    def __post_init__(self) -> None:
        if self.role not in ("primary", "dr"):
            raise ValueError(f"role must be 'primary' or 'dr', got {self.role!r}")
        if self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")


class Workload(pulumi.ComponentResource):
    hostname: pulumi.Output[str]

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:workload:Workload", name, None, opts)
        labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/part-of": "meridian", "meridian.io/region": args.region}
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": NAMESPACE, "labels": {"meridian.io/platform": "true", "pod-security.kubernetes.io/enforce": "restricted"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_ns = pulumi.ResourceOptions(parent=ns)
        secret = k8s.core.v1.Secret(
            f"{name}-db",
            metadata={"namespace": NAMESPACE, "labels": labels},
            string_data={"username": args.db_user, "password": args.db_password},
            opts=in_ns,
        )
        pod_labels = {"app.kubernetes.io/name": APP}
        probe = {"httpGet": {"path": "/healthz", "port": args.container_port}, "periodSeconds": 5, "failureThreshold": 3}
        k8s.apps.v1.Deployment(
            f"{name}-api",
            metadata={"namespace": NAMESPACE, "labels": labels},
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": pod_labels},
                "template": {
                    "metadata": {"labels": {**labels, **pod_labels}},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "topologySpreadConstraints": [{
                            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": pod_labels},
                        }],
                        "containers": [{
                            "name": "api",
                            "image": args.image,
                            "ports": [{"containerPort": args.container_port, "name": "http"}],
                            "env": [
                                {"name": "MERIDIAN_REGION", "value": args.region},
                                {"name": "MERIDIAN_ROLE", "value": args.role},
                                {"name": "DB_WRITER_HOST", "value": args.db_writer},
                                {"name": "DB_READER_HOST", "value": args.db_reader},
                                {"name": "DB_SSLMODE", "value": "verify-full"},
                                {"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": secret.metadata.name, "key": "username"}}},
                                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret.metadata.name, "key": "password"}}},
                            ],
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "initialDelaySeconds": 10},
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }],
                    },
                },
            },
            opts=in_ns,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={"namespace": NAMESPACE, "labels": labels},
            spec={"minAvailable": max(1, args.replicas - 1), "selector": {"matchLabels": pod_labels}},
            opts=in_ns,
        )
        service = k8s.core.v1.Service(
            f"{name}-lb",
            metadata={
                "namespace": NAMESPACE,
                "labels": labels,
                "annotations": {
                    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                    "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": args.certificate_arn,
                    "service.beta.kubernetes.io/aws-load-balancer-ssl-ports": "443",
                    "service.beta.kubernetes.io/aws-load-balancer-backend-protocol": "tcp",
                },
            },
            spec={"type": "LoadBalancer", "selector": pod_labels, "ports": [{"name": "https", "port": 443, "targetPort": args.container_port}]},
            opts=in_ns,
        )
        self.hostname = service.status.load_balancer.ingress[0].hostname
        self.register_outputs({"hostname": self.hostname})
