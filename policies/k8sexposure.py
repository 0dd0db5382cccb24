"""Kubernetes paths around the pack's view: a Service that opens its own load balancer or node
ports (bypassing the program's ALB, its WAF, TLS policy and access logs), and Helm charts, whose
rendered objects the pack never sees, admitted only as pinned, reviewed charts."""

from __future__ import annotations

from typing import Any

from ruleutil import HIGH, as_list, dig, peek, resource_policy

SERVICES = ("kubernetes:core/v1:Service", "kubernetes:core/v1:ServicePatch")
EXPOSED_TYPES = ("LoadBalancer", "NodePort")
HELM = (
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:helm.sh/v3:Chart",
    "kubernetes:helm.sh/v4:Chart",
)


def check_service(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    namespace = dig(props, "metadata", "namespace", default="default")
    name = peek(props, "metadata", "name")
    if f"{namespace}/{name}" in config.get("exposedServices", []):
        return []
    out = []
    kind = dig(props, "spec", "type", default=None if type_.endswith("Patch") else "ClusterIP")
    if kind in EXPOSED_TYPES:
        out.append(
            f"Kubernetes Service {namespace}/{name} must not be of type {kind}: it opens "
            f"{'a load balancer of its own' if kind == 'LoadBalancer' else 'a port on every node'} beside the stack's "
            "ALB (no WAF, no TLS policy, no access logs); serve it through the ALB's target groups (TargetGroupBinding)"
        )
    if as_list(dig(props, "spec", "externalIPs")):
        out.append(
            f"Kubernetes Service {namespace}/{name} must not set `spec.externalIPs`: it accepts traffic on addresses outside the cluster's control"
        )
    return out


k8s_service_internal = resource_policy(
    "k8s-service-internal-only",
    what="Checks that no Kubernetes Service (or ServicePatch) is of type LoadBalancer or NodePort, or sets `externalIPs`, "
    "unless listed in `exposedServices` (`namespace/name`)",
    why="The program's one way in is the regional ALB (TLS policy, access logs, target groups filled by the controller): "
    "a LoadBalancer Service makes a second load balancer, a NodePort opens every node, and neither passes through it.",
    types=SERVICES,
    check=check_service,
    severity=HIGH,
    config={
        "exposedServices": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "`namespace/name` of Services reviewed to be exposed on their own",
        }
    },
    remediation="Keep the Service ClusterIP and bind it to the ALB's target group with a TargetGroupBinding "
    "(components.workload does); for a reviewed exception, add `namespace/name` to `exposedServices`.",
    limits="Services that Helm charts or controllers create are not in the plan (helm-release-allowlisted admits only "
    "reviewed charts); an Ingress or Gateway object would be judged by the inventory as an unreviewed type; ExternalName "
    "Services (a DNS alias, no inbound path) pass.",
    tags=["exposure", "kubernetes"],
)


def _allowed(config: dict) -> set[tuple[str, str, str]]:
    return {
        (str(c.get("chart")), str(c.get("repo", "")).rstrip("/"), str(c.get("version")))
        for c in config.get("allowedCharts", [])
        if isinstance(c, dict)
    }


def check_helm(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    chart = dig(props, "chart")
    version = dig(props, "version")
    repo = dig(props, "repositoryOpts", "repo") or dig(props, "fetchOpts", "repo") or ""  # an unknown one raises: unverifiable
    if dig(props, "postrender"):
        return [
            f"Helm {type_.rsplit(':', 1)[-1]} must not run a post-renderer (`postrender`): it rewrites the rendered objects after review"
        ]
    pinned = (str(chart), str(repo).rstrip("/"), str(version))
    if pinned in _allowed(config):
        return []
    return [
        f"Helm {type_.rsplit(':', 1)[-1]} must install a reviewed chart: chart {chart!r} from {repo or 'no repository'!r} at "
        f"version {version!r} is not in `allowedCharts` (chart, repo and exact version): what it renders (Services, "
        "RBAC, pods) is never seen by the pack"
    ]


helm_allowlisted = resource_policy(
    "helm-release-allowlisted",
    what="Checks that every Helm Release and Chart (helm.sh v3 and v4) installs a chart named in `allowedCharts` by chart "
    "name, repository and exact version, without a post-renderer",
    why="A chart renders Kubernetes objects inside the provider or Helm, after the pack has judged the plan: a "
    "LoadBalancer Service, a ClusterRoleBinding or a privileged DaemonSet would deploy unjudged. Only a chart a reviewer "
    "has read, pinned to the version read, may install.",
    types=HELM,
    check=check_helm,
    severity=HIGH,
    config={
        "allowedCharts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"chart": {"type": "string"}, "repo": {"type": "string"}, "version": {"type": "string"}},
                "required": ["chart", "repo", "version"],
            },
            "default": [],
            "description": "reviewed charts: {chart, repo, version} (generated from the charts the program installs)",
        }
    },
    remediation="Pin `chart`, `repository_opts.repo` and `version` to a reviewed chart and add it to `allowedCharts` (the "
    "program's own charts are generated into policies/config/<stack>.json by `meridian policy --write-config`).",
    limits="The allowlist proves which chart and version install, not what its values make of it: a reviewer of an "
    "entry reviews the chart's templates with the program's values; the runtime admission policies hold tenant namespaces "
    "to the workload rules whatever a chart renders.",
    tags=["kubernetes", "inventory"],
)

POLICIES = [k8s_service_internal, helm_allowlisted]
