"""Legacy and renamed resource types, seen by every rule in the shape the rules read.

pulumi-aws keeps old names alive beside new ones: `aws:s3/bucketV2:BucketV2` is the pulumi-aws 6
bucket under its old name (its inline settings are one-element lists: `replicationConfigurations[]
.rules[].destinations[]`, `serverSideEncryptionConfigurations[].rules[]
.applyServerSideEncryptionByDefaults[]`, `versionings[]`, `loggings[]`), the `...V2` bucket
sub-resources are the same resources under a second name, and `aws:alb/*` are `aws:lb/*`. A rule
written for one name must not pass the other in silence, so `ruleutil` sends every resource through
here before any rule reads it: resource rules get the canonical type and props, stack rules get a
`View` of each renamed resource (canonical type, reshaped props, property dependencies renamed
with them). Everything else passes through untouched (a dictionary lookup per resource).

The shapes are pulumi-aws 7's, read from the installed package's input types
(`pulumi_aws/s3/_inputs.py`: `BucketV2ReplicationConfigurationRuleDestinationArgs` and friends);
tests/test_policy_cover.py checks every alias against the installed package. An unknown value
stays unknown: reshaping copies the sentinels, and reading one still raises `UnknownValueError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import unknown_checking_proxy

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"

# Renamed types whose arguments are the same as the canonical type's (checked against pulumi-aws 7).
ALIASES: dict[str, str] = {
    **{
        f"aws:s3/{sub}V2:{sub[0].upper()}{sub[1:]}V2": f"aws:s3/{sub}:{sub[0].upper()}{sub[1:]}"
        for sub in (
            "bucketAccelerateConfiguration",
            "bucketAcl",
            "bucketCorsConfiguration",
            "bucketLifecycleConfiguration",
            "bucketLogging",
            "bucketObjectLockConfiguration",
            "bucketRequestPaymentConfiguration",
            "bucketServerSideEncryptionConfiguration",
            "bucketVersioning",
            "bucketWebsiteConfiguration",
        )
    },
    **{
        f"aws:alb/{sub}:{sub[0].upper()}{sub[1:]}": f"aws:lb/{sub}:{sub[0].upper()}{sub[1:]}"
        for sub in ("loadBalancer", "listener", "listenerRule", "listenerCertificate", "targetGroup", "targetGroupAttachment")
    },
}


def _raw(value: Any) -> Any:
    """The plain value under the SDK's (deep) proxies, unknown sentinels kept."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Mapping):
        target = value if isinstance(value, dict) else value["__target"]
        return {k: _raw(v) for k, v in target.items()}
    if isinstance(value, Sequence):
        target = value if isinstance(value, list) else value["__target"]  # type: ignore[index]
        return [_raw(v) for v in target]
    return value


def _items(value: Any) -> list[Any]:
    """A list input as a list; a single value (or an unknown sentinel) as one item."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _first(value: Any) -> Any:
    """The one element of a MaxItems-1 list (the provider refuses more), or the value itself if not a list."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


# BucketV2 destination blocks (one-element lists) -> the Bucket destination's single blocks
_DESTINATION_BLOCKS = {"accessControlTranslations": "accessControlTranslation", "replicationTimes": "replicationTime"}


def _replication(configs: Any) -> Any:
    """`replicationConfigurations[].rules[].destinations[]` -> `replicationConfiguration.rules[].destination`:
    every destination of every configuration kept, one rule per destination."""
    if not isinstance(configs, list):
        return configs  # unknown as a whole: stays unknown
    role, rules = None, []
    for config in configs:
        if not isinstance(config, dict):
            rules.append(config)
            continue
        role = role if role is not None else config.get("role")
        for rule in _items(config.get("rules")):
            if not isinstance(rule, dict):
                rules.append(rule)
                continue
            base = {k: v for k, v in rule.items() if k not in ("destinations", "filters", "sourceSelectionCriterias")}
            if "filters" in rule:
                base["filter"] = _first(rule["filters"])
            if "sourceSelectionCriterias" in rule:
                base["sourceSelectionCriteria"] = _first(rule["sourceSelectionCriterias"])
            for dest in _items(rule.get("destinations")) or [None]:
                if isinstance(dest, dict):
                    dest = {_DESTINATION_BLOCKS.get(k, k): _first(v) if k in _DESTINATION_BLOCKS else v for k, v in dest.items()}
                rules.append({**base, "destination": dest})
    out = {"rules": rules}
    if role is not None:
        out["role"] = role
    return out


def _encryption(configs: Any) -> Any:
    """`serverSideEncryptionConfigurations[].rules[].applyServerSideEncryptionByDefaults[]` -> `serverSideEncryptionConfiguration.rule`."""
    config = _first(configs)
    if not isinstance(config, dict):
        return config
    rule = _first(config.get("rules"))
    if not isinstance(rule, dict):
        return {"rule": rule}
    shaped = {k: v for k, v in rule.items() if k != "applyServerSideEncryptionByDefaults"}
    if "applyServerSideEncryptionByDefaults" in rule:
        shaped["applyServerSideEncryptionByDefault"] = _first(rule["applyServerSideEncryptionByDefaults"])
    return {"rule": shaped}


# BucketV2 property -> (canonical property, reshape)
_BUCKET_V2: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "replicationConfigurations": ("replicationConfiguration", _replication),
    "serverSideEncryptionConfigurations": ("serverSideEncryptionConfiguration", _encryption),
    "versionings": ("versioning", _first),
    "loggings": ("logging", _first),
    "websites": ("website", _first),
}

RESHAPED: dict[str, tuple[str, dict[str, tuple[str, Callable[[Any], Any]]]]] = {BUCKET_V2: (BUCKET, _BUCKET_V2)}


def canonical(type_: str) -> str:
    """The type the rules know a resource by."""
    if type_ in RESHAPED:
        return RESHAPED[type_][0]
    return ALIASES.get(type_, type_)


def normalise(type_: str, props: Any) -> tuple[str, Any]:
    """(canonical type, props in its shape); props come back as they came (proxy or plain) for
    types that need no reshaping."""
    if type_ not in RESHAPED:
        return ALIASES.get(type_, type_), props
    target, fields = RESHAPED[type_]
    if not isinstance(props, Mapping):
        return target, props
    shaped = {}
    for key, value in _raw(props).items():
        name, reshape = fields.get(key, (key, None))
        shaped[name] = reshape(value) if reshape else value
    return target, (shaped if isinstance(props, dict) else unknown_checking_proxy(shaped))


def renamed_dependencies(type_: str, deps: Mapping[str, Any]) -> dict[str, Any]:
    fields = RESHAPED[type_][1] if type_ in RESHAPED else {}
    return {fields[k][0] if k in fields else k: v for k, v in deps.items()}


class View:
    """A renamed resource as the rules read it: canonical type and props; everything else (urn,
    name, parent, provider, dependencies, options) is the resource's own."""

    def __init__(self, resource: Any):
        self._resource = resource
        self.original_type = resource.resource_type
        self.resource_type, self.props = normalise(resource.resource_type, resource.props)
        self.property_dependencies = renamed_dependencies(resource.resource_type, resource.property_dependencies)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resource, name)


def normalised(resources: Sequence[Any]) -> list[Any]:
    """The stack's resources with every renamed one seen through a `View` (the others as they
    are), and every link (parent, dependency) to a renamed resource pointed at its view, so a rule
    following a link reads the same shape as one listing the type. Re-linking is idempotent: the
    SDK hands every stack rule the same resource objects."""
    views = {r.urn: View(r) for r in resources if r.resource_type in RESHAPED or r.resource_type in ALIASES}
    if not views:
        return list(resources)
    out = [views.get(r.urn, r) for r in resources]
    for r in out:
        links = r.property_dependencies
        for prop, deps in links.items():
            links[prop] = [views.get(d.urn, d) for d in deps]
        r.dependencies[:] = [views.get(d.urn, d) for d in r.dependencies]
        if r.parent is not None and r.parent.urn in views:
            r.parent = views[r.parent.urn]
    return out
