"""What every rule module shares: building policies from plain `check_*` functions, config with
defaults, reading props that may be unknown, policy documents, regions and resource links.

A resource check is `check(type, props, config, provider_props) -> list[str]` (one message per
problem); a stack check is `check(resources, config) -> list[(urn | None, message)]`. Both take
what the analyzer hands over (proxies that raise `UnknownValueError` on an unknown value) or plain
dicts, so tests can call them directly too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

__all__ = ["UnknownValueError"]

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL

TAG_TENANT = "meridian:tenant"
TENANT_LABEL = "meridian.io/tenant"
AWS_PROVIDER = "pulumi:providers:aws"
WORLD = ("0.0.0.0/0", "::/0")

# --- building policies -------------------------------------------------------------------------


def _schema(config: Mapping[str, dict] | None, required: Sequence[str] | None) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=dict(config or {}), required=list(required) if required else None)


def settings(schema: PolicyConfigSchema | None, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The schema defaults overlaid with the config the engine sent (it may leave defaults out)."""
    out = {k: v["default"] for k, v in (schema.properties.items() if schema else ()) if "default" in v}
    out.update(dict(given or {}))
    return out


def describe(what: str, why: str) -> str:
    """Descriptions read `Checks that <what>. Why: <why>` (the catalog splits them there)."""
    assert what.startswith("Checks that ") and " Why: " not in what
    return f"{what.rstrip('.')}. Why: {why}"


def resource_policy(
    name: str,
    *,
    what: str,
    why: str,
    types: Iterable[str],
    check: Callable[[str, Any, dict, Any], list[str]],
    remediation: str,
    severity: Severity = HIGH,
    level: EnforcementLevel = MANDATORY,
    config: Mapping[str, dict] | None = None,
    required: Sequence[str] | None = None,
    tags: Sequence[str] = (),
) -> ResourceValidationPolicy:
    """A resource rule from a plain check; `types` limits it (`*` prefix match: `aws:*`)."""
    exact = {t for t in types if not t.endswith("*")}
    prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
    schema = _schema(config, required)

    def validate(args: ResourceValidationArgs, report) -> None:
        if args.resource_type not in exact and not args.resource_type.startswith(prefixes or ("\0",)):
            return
        provider_props = args.provider.props if args.provider is not None else None
        for message in check(args.resource_type, args.props, settings(schema, args.get_config()), provider_props):
            report(message)

    return ResourceValidationPolicy(
        name=name, description=describe(what, why), validate=validate, enforcement_level=level,
        config_schema=schema, severity=severity, remediation_steps=remediation, tags=list(tags) or None,
    )


def stack_policy(
    name: str,
    *,
    what: str,
    why: str,
    check: Callable[[Sequence[Any], dict], list[tuple[str | None, str]]],
    remediation: str,
    severity: Severity = HIGH,
    level: EnforcementLevel = MANDATORY,
    config: Mapping[str, dict] | None = None,
    required: Sequence[str] | None = None,
    tags: Sequence[str] = (),
) -> StackValidationPolicy:
    schema = _schema(config, required)

    def validate(args: StackValidationArgs, report) -> None:
        for urn, message in check(args.resources, settings(schema, args.get_config())):
            report(message, urn)

    return StackValidationPolicy(
        name=name, description=describe(what, why), validate=validate, enforcement_level=level,
        config_schema=schema, severity=severity, remediation_steps=remediation, tags=list(tags) or None,
    )


# --- reading props -----------------------------------------------------------------------------


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def plain(value: Any) -> Any:
    """Proxies -> plain dicts and lists; raises `UnknownValueError` if anything inside is unknown."""
    if isinstance(value, str):
        return value
    if is_map(value):
        return {k: plain(value[k]) for k in value}
    if is_list(value):
        return [plain(value[i]) for i in range(len(value))]
    return value


def dig(value: Any, *path: str | int, default: Any = None) -> Any:
    """Walk a path of keys / indexes; `default` where a step is missing (unknowns still raise)."""
    for step in path:
        if isinstance(step, int):
            if not is_list(value) or not -len(value) <= step < len(value):
                return default
            value = value[step]
        else:
            if not is_map(value) or step not in value:
                return default
            value = value[step]
        if value is None:
            return default
    return value


class _Unknown:
    """A value only known after apply (what `peek` returns instead of raising)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


def peek(value: Any, *path: str | int, default: Any = None) -> Any:
    """Like `dig`, but an unknown value comes back as `UNKNOWN` instead of raising: for presence
    checks, where "will be set to another resource's output" counts as set."""
    try:
        return dig(value, *path, default=default)
    except UnknownValueError:
        return UNKNOWN


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if is_list(value):
        return [value[i] for i in range(len(value))]
    return [value]


def truthy(value: Any) -> bool:
    """Booleans sometimes arrive as strings (provider inputs, mocks)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def tags_of(props: Any) -> dict[str, str]:
    """`tags` as a map; a list of {key, value} (autoscaling groups) too."""
    tags = dig(props, "tags")
    if is_map(tags):
        return {str(k): tags[k] for k in tags}
    if is_list(tags):
        return {str(dig(t, "key")): dig(t, "value") for t in as_list(tags) if dig(t, "key") is not None}
    return {}


def labels_of(props: Any) -> dict[str, str]:
    labels = dig(props, "metadata", "labels")
    return {str(k): labels[k] for k in labels} if is_map(labels) else {}


# --- policy documents ---------------------------------------------------------------------------


def statements(document: Any) -> list[dict[str, Any]]:
    """An IAM policy document (JSON string or dict) -> its statements, normalised:
    effect, actions / not_actions (lower case), resources / not_resources, principal, condition.
    A document that is not valid JSON yields no statements (the provider rejects it anyway)."""
    doc = plain(document)
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return []
    if not isinstance(doc, dict):
        return []
    raw = doc.get("Statement", [])
    out = []
    for st in raw if isinstance(raw, list) else [raw]:
        if not isinstance(st, dict):
            continue
        out.append({
            "effect": str(st.get("Effect", "")).lower(),
            "actions": [str(a).lower() for a in as_list(st.get("Action"))],
            "not_actions": [str(a).lower() for a in as_list(st.get("NotAction"))],
            "resources": [str(r) for r in as_list(st.get("Resource"))],
            "not_resources": [str(r) for r in as_list(st.get("NotResource"))],
            "principal": st.get("Principal"),
            "condition": st.get("Condition") or {},
            "sid": st.get("Sid", ""),
        })
    return out


def action_matches(pattern: str, action: str) -> bool:
    """IAM wildcard matching of an action pattern (`s3:Get*`, `*`) against an action, case-insensitive."""
    import fnmatch

    return fnmatch.fnmatchcase(action.lower(), pattern.lower().replace("[", "[[]"))


def allows(st: dict[str, Any], action: str) -> bool:
    """Whether an Allow statement grants `action` (through Action or NotAction)."""
    if st["effect"] != "allow":
        return False
    if st["not_actions"]:
        return not any(action_matches(p, action) for p in st["not_actions"])
    return any(action_matches(p, action) for p in st["actions"])


def grants_service(st: dict[str, Any], service: str) -> bool:
    """Whether an Allow statement grants some action of `service` (`s3`, `kms`)."""
    if st["effect"] != "allow":
        return False
    if st["not_actions"]:
        return True  # NotAction allows everything not listed: assume the service is reachable
    return any(a == "*" or a.split(":", 1)[0] in (service, "*") for a in st["actions"])


# --- regions ------------------------------------------------------------------------------------


def region_of(props: Any, provider_props: Any) -> str | None:
    """A per-resource `region` (pulumi-aws 7) wins over the provider's `region`; None if neither."""
    explicit = dig(props, "region")
    if isinstance(explicit, str) and explicit:
        return explicit
    region = dig(provider_props, "region")
    return region if isinstance(region, str) and region else None


def resource_region(resource: Any) -> str | None:
    """The region of a stack resource (`PolicyResource`)."""
    if resource.resource_type == AWS_PROVIDER:
        return dig(resource.props, "region")
    provider = resource.provider
    return region_of(resource.props, provider.props if provider is not None else None)


def arn_region(arn: Any) -> str | None:
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


# --- the stack as a graph -----------------------------------------------------------------------


class Stack:
    """Indexes over the resources of an AnalyzeStack call: by type, and who references whom."""

    def __init__(self, resources: Sequence[Any]):
        self.resources = list(resources)
        self.by_type: dict[str, list[Any]] = defaultdict(list)
        self.by_urn: dict[str, Any] = {}
        self.referrers: dict[str, list[tuple[Any, str]]] = defaultdict(list)  # urn -> [(resource, property)]
        for r in self.resources:
            self.by_type[r.resource_type].append(r)
            self.by_urn[r.urn] = r
            for prop, deps in r.property_dependencies.items():
                for dep in deps:
                    self.referrers[dep.urn].append((r, prop))

    def of(self, *types: str) -> list[Any]:
        return [r for t in types for r in self.by_type.get(t, [])]

    def linked(self, resource: Any, prop: str, *types: str) -> list[Any]:
        """Resources of `types` that `resource`'s property `prop` was built from."""
        return [d for d in resource.property_dependencies.get(prop, []) if not types or d.resource_type in types]

    def referring(self, target: Any, prop: str | None, *types: str) -> list[Any]:
        """Resources of `types` whose property `prop` (any, if None) was built from `target`."""
        return [r for r, p in self.referrers.get(target.urn, []) if (prop is None or p == prop) and (not types or r.resource_type in types)]


def is_unknown_error(exc: BaseException) -> bool:
    return isinstance(exc, UnknownValueError)
