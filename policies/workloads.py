"""Kubernetes workloads meet Pod Security "restricted": no privileged or root containers, no host
namespaces, host paths or host ports, privilege escalation off, all capabilities dropped, a
seccomp profile. The admission controller enforces this only where a namespace is labelled for it;
the rule makes it a property of every workload the stack creates."""

from __future__ import annotations

from typing import Any

from ruleutil import HIGH, UnknownValueError, Unverifiable, as_list, dig, resource_policy, string_list, truthy

# kind -> where its pod spec lives; every API version of the kind, and its server-side-apply
# `<Kind>Patch` variant (pulumi-kubernetes), are judged alike
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


# every API version pulumi-kubernetes 4 has of those kinds: what the rule judges by name (inventory)
_GROUP_VERSIONS = {
    "Pod": ("core/v1",),
    "PodTemplate": ("core/v1",),
    "ReplicationController": ("core/v1",),
    "Deployment": ("apps/v1", "apps/v1beta1", "apps/v1beta2"),
    "StatefulSet": ("apps/v1", "apps/v1beta1", "apps/v1beta2"),
    "DaemonSet": ("apps/v1", "apps/v1beta2"),
    "ReplicaSet": ("apps/v1", "apps/v1beta2"),
    "Job": ("batch/v1",),
    "CronJob": ("batch/v1", "batch/v1beta1", "batch/v2alpha1"),
}
WORKLOAD_TYPES = [
    f"kubernetes:{gv}:{kind}{patch}" for kind, gvs in _GROUP_VERSIONS.items() for gv in gvs for patch in ("", "Patch")
]


def workload_kind(type_: str) -> tuple[str | None, bool]:
    """(`Deployment`, is it a Patch) for `kubernetes:apps/v1:DeploymentPatch`; (None, False) for other types."""
    kind = type_.rsplit(":", 1)[-1]
    patch = kind.endswith("Patch")
    kind = kind.removesuffix("Patch")
    return (kind, patch) if type_.startswith("kubernetes:") and kind in POD_SPEC_PATHS else (None, False)


_SECCOMP = ("RuntimeDefault", "Localhost")
# Pod Security Standards, https://kubernetes.io/docs/concepts/security/pod-security-standards/
# (baseline controls hold in restricted too): restricted's volume types, baseline's SELinux types,
# /proc mount types, safe sysctls and AppArmor profiles
_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_APPARMOR = ("RuntimeDefault", "Localhost")


def _context_problems(sc: Any, who: str) -> list[str]:
    """Baseline's controls on a pod's or a container's securityContext: SELinux type, user and role,
    Windows HostProcess, AppArmor profile; a container's /proc mount."""
    out = []
    selinux = dig(sc, "seLinuxOptions", default={})
    if dig(selinux, "type") is not None and str(dig(selinux, "type")) not in _SELINUX_TYPES:
        out.append(
            f"{who} must not use the SELinux type {dig(selinux, 'type')} (allowed: {', '.join(sorted(_SELINUX_TYPES - {''}))})"
        )
    for field in ("user", "role"):
        if dig(selinux, field) not in (None, ""):
            out.append(f"{who} must not set the SELinux {field} ({dig(selinux, field)})")
    if truthy(dig(sc, "windowsOptions", "hostProcess", default=False)):
        out.append(f"{who} must not run as a Windows HostProcess (`windowsOptions.hostProcess`): it is a process on the node")
    apparmor = dig(sc, "appArmorProfile", "type")
    if apparmor is not None and apparmor not in _APPARMOR:
        out.append(f"{who} must use a RuntimeDefault or Localhost AppArmor profile, not {apparmor}")
    if dig(sc, "procMount") not in (None, "Default"):
        out.append(
            f"{who} must keep the Default /proc mount, not {dig(sc, 'procMount')}: Unmasked exposes the host's /proc paths"
        )
    return out


def _pod_problems(pod: Any) -> list[str]:
    """The pod-level fields of restricted beyond host namespaces and host paths."""
    out = []
    for v in as_list(dig(pod, "volumes")):
        kinds = sorted(set(dig(v, default={}) or {}) - {"name", "hostPath"} - _VOLUME_TYPES)
        if kinds:
            out.append(
                f"Pod must not mount a {', '.join(kinds)} volume ({dig(v, 'name')}): restricted allows only "
                f"{', '.join(sorted(_VOLUME_TYPES))}"
            )
    sysctls = sorted({str(dig(x, "name")) for x in as_list(dig(pod, "securityContext", "sysctls"))} - _SAFE_SYSCTLS)
    if sysctls:
        out.append(f"Pod must not set the sysctls {', '.join(sysctls)}: only the namespaced safe set is isolated from other pods")
    return out + _context_problems(dig(pod, "securityContext", default={}), "Pod")


def _container_problems(c: Any, pod_ctx: Any, patch: bool) -> list[str]:
    """What makes a container not "restricted"; for a patch (`patch`), only what it sets: what it
    leaves out keeps the live object's value, which the admission policy in the cluster judges."""
    name = dig(c, "name", default="?")
    sc = dig(c, "securityContext", default={})
    out = []
    if truthy(dig(sc, "privileged", default=False)):
        out.append(f"container {name} must not be privileged")
    escalation = dig(sc, "allowPrivilegeEscalation")
    if truthy(escalation) or (escalation is None and not patch):
        out.append(f"container {name} must set `allowPrivilegeEscalation: false`")
    drops = {str(d) for d in as_list(dig(sc, "capabilities", "drop"))}
    if "ALL" not in drops and not (patch and dig(sc, "capabilities", "drop") is None):
        out.append(f"container {name} must drop ALL capabilities")
    added = sorted({str(a) for a in as_list(dig(sc, "capabilities", "add"))} - {"NET_BIND_SERVICE"})
    if added:
        out.append(f"container {name} must not add capabilities {', '.join(added)}")
    non_root = dig(sc, "runAsNonRoot", default=dig(pod_ctx, "runAsNonRoot"))
    if (non_root is not None or not patch) and not truthy(non_root if non_root is not None else False):
        out.append(f"container {name} must run as non-root (`runAsNonRoot: true` on the pod or container)")
    user = dig(sc, "runAsUser", default=dig(pod_ctx, "runAsUser"))
    if user is not None and int(float(user)) == 0:
        out.append(f"container {name} must not run as UID 0")
    seccomp = dig(sc, "seccompProfile", "type", default=dig(pod_ctx, "seccompProfile", "type"))
    if seccomp not in _SECCOMP and not (patch and seccomp is None):
        out.append(f"container {name} must use a RuntimeDefault or Localhost seccomp profile")
    if any(int(float(dig(p, "hostPort", default=0))) for p in as_list(dig(c, "ports"))):
        out.append(f"container {name} must not use a hostPort")
    return out + _context_problems(sc, f"container {name}")


def check_pod_security(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    kind, patch = workload_kind(type_)
    if kind is None:
        return []
    namespace = dig(props, "metadata", "namespace", default="default")
    if f"{namespace}/{kind}/{dig(props, 'metadata', 'name')}" in config.get("systemWorkloads", []):
        return []  # a system workload the program installs and reviewed by name, never a namespace's any
    pod = dig(props, *POD_SPEC_PATHS[kind], default={})
    out = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if truthy(dig(pod, flag, default=False)):
            out.append(f"Pod must not use `{flag}`")
    out += [
        f"Pod must not mount the host path {dig(v, 'hostPath', 'path')}"
        for v in as_list(dig(pod, "volumes"))
        if dig(v, "hostPath") is not None
    ]
    out += [f"{m} (Pod Security restricted)" for m in _pod_problems(pod)]
    ctx = dig(pod, "securityContext", default={})
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        for i, c in enumerate(as_list(dig(pod, kind))):
            try:
                out += [f"Pod {m} (Pod Security restricted)" for m in _container_problems(c, ctx, patch)]
            except UnknownValueError as exc:
                out.append(Unverifiable.of(exc, f"{kind}[{i}]"))
    return out


pod_security_restricted = resource_policy(
    "k8s-workload-pod-security-restricted",
    what="Checks that every Pod and pod template (Pod, PodTemplate, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, in every API version, and each one's `...Patch` variant for what the patch sets) in any namespace, kube-system included, unless listed by namespace, kind and name in `systemWorkloads`, meets Pod Security \"restricted\": no privileged containers, no host network / PID / IPC, no hostPath volumes or hostPorts, `allowPrivilegeEscalation: false`, capabilities drop ALL (add at most NET_BIND_SERVICE), non-root, not UID 0, a RuntimeDefault or Localhost seccomp profile, volumes only of restricted's types (configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret), SELinux type only container_t / container_init_t / container_kvm_t / container_engine_t and no SELinux user or role, no Windows HostProcess, the Default /proc mount, AppArmor RuntimeDefault or Localhost, and only the safe sysctls (as listed by the Pod Security Standards, https://kubernetes.io/docs/concepts/security/pod-security-standards/)",
    why="Tenant and platform pods share nodes: one privileged, host-namespaced or root container can read every other tenant's memory, files and service-account tokens on the node.",
    types=["kubernetes:*"],
    reads=WORKLOAD_TYPES,
    check=check_pod_security,
    severity=HIGH,
    config={
        "systemWorkloads": string_list(
            [],
            "`<namespace>/<Kind>/<name>` of each workload the program itself declares that needs host access (none today: "
            "kube-system's privileged pods come from EKS add-ons and the load balancer controller's Helm release, which the "
            "plan holds as add-on and release resources, not as workloads)",
        )
    },
    remediation="Set the pod's `securityContext` to `{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}` and each container's to "
    "`{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}`; label namespaces "
    "`pod-security.kubernetes.io/enforce: restricted`.",
    limits="Only workloads the stack creates: pods made by controllers and Helm charts, and the fields a patch leaves to the live object, are left to the cluster's admission (the tenant ValidatingAdmissionPolicy and the Pod Security label on the namespace). Restricted's optional non-root groups and the legacy seccomp and AppArmor annotations are not read. A workload listed in `systemWorkloads` is trusted by its namespace, kind and name, not judged.",
    tags=["kubernetes", "workloads"],
)

POLICIES = [pod_security_restricted]
