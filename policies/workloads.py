"""Kubernetes workloads meet Pod Security "restricted": no privileged or root containers, no host
namespaces, host paths or host ports, privilege escalation off, all capabilities dropped, a
seccomp profile. The admission controller enforces this only where a namespace is labelled for it;
the rule makes it a property of every workload the stack creates."""

from __future__ import annotations

from typing import Any

from ruleutil import HIGH, UnknownValueError, Unverifiable, as_list, dig, resource_policy, string_list, truthy

POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_SECCOMP = ("RuntimeDefault", "Localhost")


def _container_problems(c: Any, pod_ctx: Any) -> list[str]:
    name = dig(c, "name", default="?")
    sc = dig(c, "securityContext", default={})
    out = []
    if truthy(dig(sc, "privileged", default=False)):
        out.append(f"container {name} must not be privileged")
    if dig(sc, "allowPrivilegeEscalation") is None or truthy(dig(sc, "allowPrivilegeEscalation")):
        out.append(f"container {name} must set `allowPrivilegeEscalation: false`")
    drops = {str(d) for d in as_list(dig(sc, "capabilities", "drop"))}
    if "ALL" not in drops:
        out.append(f"container {name} must drop ALL capabilities")
    added = sorted({str(a) for a in as_list(dig(sc, "capabilities", "add"))} - {"NET_BIND_SERVICE"})
    if added:
        out.append(f"container {name} must not add capabilities {', '.join(added)}")
    non_root = dig(sc, "runAsNonRoot", default=dig(pod_ctx, "runAsNonRoot"))
    if not truthy(non_root if non_root is not None else False):
        out.append(f"container {name} must run as non-root (`runAsNonRoot: true` on the pod or container)")
    user = dig(sc, "runAsUser", default=dig(pod_ctx, "runAsUser"))
    if user is not None and int(float(user)) == 0:
        out.append(f"container {name} must not run as UID 0")
    seccomp = dig(sc, "seccompProfile", "type", default=dig(pod_ctx, "seccompProfile", "type"))
    if seccomp not in _SECCOMP:
        out.append(f"container {name} must use a RuntimeDefault or Localhost seccomp profile")
    if any(int(float(dig(p, "hostPort", default=0))) for p in as_list(dig(c, "ports"))):
        out.append(f"container {name} must not use a hostPort")
    return out


def check_pod_security(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    namespace = dig(props, "metadata", "namespace", default="default")
    if namespace in config.get("exemptNamespaces", ["kube-system"]):
        return []
    pod = dig(props, *POD_SPEC_PATHS[type_], default={})
    out = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if truthy(dig(pod, flag, default=False)):
            out.append(f"Pod must not use `{flag}`")
    out += [
        f"Pod must not mount the host path {dig(v, 'hostPath', 'path')}"
        for v in as_list(dig(pod, "volumes"))
        if dig(v, "hostPath") is not None
    ]
    ctx = dig(pod, "securityContext", default={})
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        for i, c in enumerate(as_list(dig(pod, kind))):
            try:
                out += [f"Pod {m} (Pod Security restricted)" for m in _container_problems(c, ctx)]
            except UnknownValueError as exc:
                out.append(Unverifiable.of(exc, f"{kind}[{i}]"))
    return out


pod_security_restricted = resource_policy(
    "k8s-workload-pod-security-restricted",
    what='Checks that every Pod and pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) outside the exempt namespaces meets Pod Security "restricted": no privileged containers, no host network / PID / IPC, no hostPath volumes or hostPorts, `allowPrivilegeEscalation: false`, capabilities drop ALL (add at most NET_BIND_SERVICE), non-root, not UID 0, a RuntimeDefault or Localhost seccomp profile',
    why="Tenant and platform pods share nodes: one privileged, host-namespaced or root container can read every other tenant's memory, files and service-account tokens on the node.",
    types=list(POD_SPEC_PATHS),
    check=check_pod_security,
    severity=HIGH,
    config={"exemptNamespaces": string_list(["kube-system"], "namespaces whose system workloads may need host access")},
    remediation="Set the pod's `securityContext` to `{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}` and each container's to "
    "`{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}`; label namespaces "
    "`pod-security.kubernetes.io/enforce: restricted`.",
    limits="Only workloads the stack creates: pods made by controllers and Helm charts are left to the Pod Security admission label on their namespace.",
    tags=["kubernetes", "workloads"],
)

POLICIES = [pod_security_restricted]
