"""What each Deployment (and Job) would give its pods, read back from the recorded registrations.

The container spec as registered, and the content of every Secret file it mounts, secrets
included: the consumer (the service) is run or checked with exactly what the producer (the
program) rendered. Values the engine would not know at preview are reported, never guessed.
"""

from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meridian.engine.recorder import Registration

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
SECRET = "kubernetes:core/v1:Secret"


class Unknown:
    """A value the engine leaves unknown at preview; kept distinct so nobody mistakes it for data."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN_VALUE = Unknown()


def reveal(value: Any) -> Any:
    """Wire format -> plain values, secrets unwrapped (for local runs only; never printed)."""
    # imported here: the sandbox reads rendered containers without loading the SDK (`sandbox up` stays fast)
    from meridian.engine.recorder import OUTPUT_SIG, RESOURCE_SIG, SECRET_SIG, SIG_KEY, UNKNOWN

    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return reveal(value.get("value"))
        if sig == RESOURCE_SIG:
            return value.get("urn")
        if sig == OUTPUT_SIG:
            return reveal(value.get("value")) if "value" in value else UNKNOWN_VALUE
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    if value == UNKNOWN:
        return UNKNOWN_VALUE
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire format has only doubles; ports and counts are integers
    return value


@dataclass
class MountedFile:
    path: str  # inside the container, e.g. /etc/meridian/service.json
    secret_urn: str | None  # the Secret it comes from; None if no Secret in the plan matches
    content: str | Unknown | None  # None: the Secret has no such key
    mode: int


@dataclass
class RenderedContainer:
    """One container of a Deployment or Job, with the files its mounts would show it."""

    owner_urn: str
    owner_type: str
    region: str
    namespace: str
    spec: dict[str, Any]
    pod_security: dict[str, Any]
    files: dict[str, MountedFile] = field(default_factory=dict)
    secret_dependencies: list[str] = field(default_factory=list)  # what the Secrets' content was built from

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "?"))

    def file(self, path: str) -> MountedFile | None:
        return self.files.get(posixpath.normpath(path))


def _secret_files(secret: dict[str, Any]) -> dict[str, str | Unknown]:
    out: dict[str, str | Unknown] = {}
    for key, value in (secret.get("data") or {}).items():
        out[key] = value if isinstance(value, Unknown) else base64.b64decode(value).decode()
    for key, value in (secret.get("stringData") or {}).items():
        out[key] = value
    return out


def rendered_containers(registrations: list[Registration], region_of) -> list[RenderedContainer]:
    """Every container of every Deployment and Job, with its mounted Secret files resolved.

    `region_of(reg)` names the region a registration lands in (the plan knows: `Plan.region_of`).
    """
    from google.protobuf import json_format

    secrets: dict[tuple[str, str, str], Registration] = {}
    revealed: dict[str, dict[str, Any]] = {}
    for reg in registrations:
        if reg.type == SECRET:
            doc = reveal(json_format.MessageToDict(reg.inputs))
            revealed[reg.urn] = doc
            meta = doc.get("metadata") or {}
            name = meta.get("name") if isinstance(meta.get("name"), str) else _auto_name(reg)
            secrets[(reg.provider_urn, str(meta.get("namespace", "default")), name)] = reg
    out = []
    for reg in registrations:
        if reg.type not in (DEPLOYMENT, JOB):
            continue
        doc = reveal(json_format.MessageToDict(reg.inputs))
        namespace = str((doc.get("metadata") or {}).get("namespace", "default"))
        pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for container in pod.get("containers") or []:
            rc = RenderedContainer(reg.urn, reg.type, region_of(reg), namespace, container, pod.get("securityContext") or {})
            for mount in container.get("volumeMounts") or []:
                source = (volumes.get(mount.get("name")) or {}).get("secret")
                if not source:
                    continue
                secret = secrets.get((reg.provider_urn, namespace, source.get("secretName")))
                content = _secret_files(revealed[secret.urn]) if secret else {}
                items = source.get("items") or [{"key": k, "path": k} for k in content]
                for item in items:
                    path = posixpath.normpath(posixpath.join(mount["mountPath"], item["path"]))
                    rc.files[path] = MountedFile(
                        path,
                        secret.urn if secret else None,
                        content.get(item["key"]),
                        int(item.get("mode", source.get("defaultMode", 0o644))),
                    )
                if secret:
                    rc.secret_dependencies += sorted({u for urns in secret.property_dependencies.values() for u in urns})
            out.append(rc)
    return out


def _auto_name(reg: Registration) -> str:
    """The name the kubernetes provider would give an unnamed object is only known after the
    registration answers; the recorded id (`<namespace>/<name>`) carries it under mocks."""
    return reg.id.rsplit("/", 1)[-1] if reg.id else reg.name
