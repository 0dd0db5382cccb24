"""What every rule module shares: building policies from plain `check_*` functions, config with
defaults, reading props that may be unknown, policy documents, regions and resource links.

A resource check is `check(type, props, config, provider_props) -> list[str]` (one message per
problem); a stack check is `check(resources, config) -> list[(urn | None, message)]`. Both take
what the analyzer hands over (proxies that raise `UnknownValueError` on an unknown value) or plain
dicts, so tests can call them directly too.

No fail-open: a value only known after apply never silences a rule. A message that is an
`Unverifiable` (what `judge_each` makes of an `UnknownValueError` met while judging one resource)
is reported for that resource alone, at advisory level (the level the SDK itself gives "can't run
during preview"), and every other resource is still judged at the rule's own level. At `pulumi up`
the analyzer sees every value, so the same rule then decides.
"""

from __future__ import annotations

import json
import re
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
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from normalise import canonical, normalise, normalised
from sdkhooks import advisory_reporter, is_unknown, shared

__all__ = ["UnknownValueError"]

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL

TAG_TENANT = "meridian:tenant"
TENANT_LABEL = "meridian.io/tenant"
AWS_PROVIDER = "pulumi:providers:aws"
WORLD = ("0.0.0.0/0", "::/0")

# type tokens more than one module reads
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
ROLE_ATTACHMENTS_EXCLUSIVE = "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive"
MANAGED_POLICY = "aws:iam/policy:Policy"
KMS_KEY = "aws:kms/key:Key"
KMS_REPLICA_KEY = "aws:kms/replicaKey:ReplicaKey"  # a multi-Region key's replica: the primary's key material
KMS_KEYS = (KMS_KEY, KMS_REPLICA_KEY)
KMS_ALIAS = "aws:kms/alias:Alias"
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_BUCKET = S3_BUCKETS[0]
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_GLOBAL = "aws:rds/globalCluster:GlobalCluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
BACKUP_VAULT = "aws:backup/vault:Vault"
BACKUP_PLAN = "aws:backup/plan:Plan"
NAMESPACE = "kubernetes:core/v1:Namespace"
BUDGET = "aws:budgets/budget:Budget"
VPC = "aws:ec2/vpc:Vpc"


# --- unknown values ----------------------------------------------------------------------------


def unknown(*path: str | int) -> UnknownValueError:
    """The error an unknown value at `path` raises (for checks that find one in plain data)."""
    return UnknownValueError(UNKNOWN_STRING_VALUE, [str(p) for p in path])


class Unverifiable(str):
    """A finding that the value deciding a rule for one resource is only known after apply."""

    @classmethod
    def of(cls, exc: UnknownValueError, what: str = "") -> Unverifiable:
        where = ".".join(str(p) for p in exc.props) or "(a value)"
        return cls(
            f"unverifiable at preview: {where}{f' ({what})' if what else ''}; "
            "the rule judges it at `pulumi up`, when the value is known"
        )

    @classmethod
    def at(cls, path: str, what: str = "") -> Unverifiable:
        return cls.of(unknown(*path.split(".")), what)


class InPlatform(Unverifiable):
    """A cell stack's finding about what its platform stack holds (pack config `platformStack`: the
    stack budget, the cap enforcer, the tenant role, the admission policies, the backup selection):
    reported advisory, as unverifiable from this stack's plan; never passed silently, never failed
    for absence alone. The platform's own plan is judged in full."""

    @classmethod
    def note(cls, config: Mapping[str, Any], finding: str) -> InPlatform | str:
        """`finding` as an advisory when this stack is a cell, else as it is (a violation)."""
        platform = config.get("platformStack")
        if not platform:
            return finding
        return cls(
            f"{finding} -- in platform stack {platform!r}, which this cell stack reads through a StackReference: "
            "not verifiable from this stack's plan; the platform's own plan is judged in full"
        )


def platform_stack_setting() -> dict[str, Any]:
    """The config property of the rules that leave parts of a cell stack to its platform."""
    return {
        "platformStack": {
            "type": "string",
            "default": "",
            "description": "a cell stack's platform stack (generated from `meridian:platform`): what the platform "
            "holds is reported as an advisory, not a violation; empty for a platform stack",
        }
    }


def judge_each(resources: Iterable[Any], judge: Callable[[Any], list[tuple[str | None, str]]]) -> list[tuple[str | None, str]]:
    """Judge resource by resource: an unknown value met while judging one resource becomes that
    resource's own `Unverifiable` finding, and the next resource is judged all the same."""
    out: list[tuple[str | None, str]] = []
    for resource in resources:
        try:
            out += judge(resource)
        except UnknownValueError as exc:
            out.append((resource.urn, Unverifiable.of(exc)))
    return out


class _Unverified(UnknownValueError):
    """Fallback when no advisory reporter can be built: one SDK "can't run" advisory listing every finding."""

    def __init__(self, findings: list[tuple[str | None, str]]):
        super().__init__(UNKNOWN_STRING_VALUE, [])
        self.message = "; ".join(f"{urn or 'the stack'}: {m}" for urn, m in findings)


def _emit(report: Callable[..., None], findings: Iterable[tuple[str | None, str]]) -> None:
    advisory, unverified = None, []
    for urn, message in findings:
        if isinstance(message, Unverifiable):
            # the SDK's `report` is bound to the policy's level: unverifiable findings go out advisory,
            # as the SDK's own "can't run during preview" does
            advisory = advisory or advisory_reporter(report)
            if advisory is None:
                unverified.append((urn, message))
            else:
                advisory(message, urn)
        else:
            report(message, urn)
    if unverified:
        raise _Unverified(unverified)


# --- building policies -------------------------------------------------------------------------


def _schema(config: Mapping[str, dict] | None, required: Sequence[str] | None) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=dict(config or {}), required=list(required) if required else None)


def string_list(default: list[str], description: str) -> dict[str, Any]:
    """The config schema of a list of strings with its default (the most common rule setting)."""
    return {"type": "array", "items": {"type": "string"}, "default": default, "description": description}


def settings(schema: PolicyConfigSchema | None, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The schema defaults overlaid with the config the engine sent (it may leave defaults out)."""
    out = {k: v["default"] for k, v in (schema.properties.items() if schema else ()) if "default" in v}
    out.update(dict(given or {}))
    return out


UP_ONLY = (
    "At preview, a deciding value computed by another resource (an ARN, a key id, a document built from new ARNs) "
    'is reported for its resource as advisory "unverifiable at preview"; `pulumi up` judges it with the value known.'
)


def describe(what: str, why: str, limits: str = "") -> str:
    """Descriptions read `Checks that <what>. Why: <why> Limits: <what it leaves to up or to AWS>`
    (the catalog splits them there)."""
    assert what.startswith("Checks that ") and " Why: " not in what and " Limits: " not in what + why
    return f"{what.rstrip('.')}. Why: {why} Limits: {UP_ONLY}{' ' + limits if limits else ''}"


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
    limits: str = "",
    reads: Iterable[str] = (),
) -> ResourceValidationPolicy:
    """A resource rule from a plain check; `types` limits it (`*` prefix match: `aws:*`). A renamed
    type (normalise.py) is judged as its canonical type, in its shape. `reads`: types a prefix rule
    judges by name all the same (it reads their shape, not just a tag), for the inventory."""
    exact = {t for t in types if not t.endswith("*")}
    prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
    schema = _schema(config, required)

    def applies_to(type_: str) -> bool:
        type_ = canonical(type_)
        return type_ in exact or type_.startswith(prefixes or ("\0",))

    def validate(args: ResourceValidationArgs, report) -> None:
        if not applies_to(args.resource_type):
            return
        provider_props = args.provider.props if args.provider is not None else None
        extra = {"urn": args.urn} if getattr(check, "wants_urn", False) else {}
        type_, props = normalise(args.resource_type, args.props)
        try:
            messages = check(type_, props, settings(schema, args.get_config()), provider_props, **extra)
        except UnknownValueError as exc:
            messages = [Unverifiable.of(exc)]
        _emit(report, ((None, m) for m in messages))

    policy = ResourceValidationPolicy(
        name=name,
        description=describe(what, why, limits),
        validate=validate,
        enforcement_level=level,
        config_schema=schema,
        severity=severity,
        remediation_steps=remediation,
        tags=list(tags) or None,
    )
    policy.applies_to = applies_to  # sdkhooks hands a resource only to the rules that apply to its type
    # the types it judges by name (inventory.py); a bare prefix judges none in particular
    policy.reads = frozenset(exact) | frozenset(reads)
    return policy


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
    limits: str = "",
    reads: Iterable[str] | None = None,
) -> StackValidationPolicy:
    """A stack rule from a plain check over every resource (renamed types seen through
    normalise.py). `reads`: the resource types the rule judges, declared beside it (inventory.py
    derives from them which types some rule reviews; None: not declared, which a test refuses)."""
    schema = _schema(config, required)

    def validate(args: StackValidationArgs, report) -> None:
        try:
            resources = args.resources
            views = shared(("normalised", *map(id, resources)), lambda: normalised(resources))
            findings = check(list(views), settings(schema, args.get_config()))
        except UnknownValueError as exc:  # a check that does not judge resource by resource: a bug, but never fail open
            findings = [(None, Unverifiable.of(exc, "the rule read it outside its per-resource judgment"))]
        _emit(report, findings)

    policy = StackValidationPolicy(
        name=name,
        description=describe(what, why, limits),
        validate=validate,
        enforcement_level=level,
        config_schema=schema,
        severity=severity,
        remediation_steps=remediation,
        tags=list(tags) or None,
    )
    policy.reads = frozenset(reads) if reads is not None else None
    return policy


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


def known(value: Any) -> Any:
    """Proxies -> plain dicts and lists, every unknown leaf replaced by `UNKNOWN` (never raises):
    for judging what is known of a document whose other parts are not."""
    if isinstance(value, str):
        return UNKNOWN if is_unknown(value) else value
    if is_map(value):
        out = {}
        for k in value:
            try:
                out[k] = known(value[k])
            except UnknownValueError:
                out[k] = UNKNOWN
        return out
    if is_list(value):
        items = []
        for i in range(len(value)):
            try:
                items.append(known(value[i]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def texts_of(value: Any) -> list[str]:
    """Every known text in a value, depth first (unknown leaves left out)."""
    out: list[str] = []
    todo = [known(value)]
    while todo:
        v = todo.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return out


SESSION_ARN = re.compile(r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]+)/.+$")


def session_role(arn: str) -> tuple[str, str, str] | None:
    """(partition, account, role name) of a role's session ARN (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`,
    which KMS grants and resource policies accept as a principal), else None. A session is judged as its role:
    what the role may do bounds what any of its sessions may."""
    m = SESSION_ARN.match(arn)
    return (m["partition"], m["account"], m["role"]) if m else None


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


class UnknownTags(dict):
    """Tags only known after apply, as a whole: every key may be there with any value, so each one
    reads `UNKNOWN` (never "absent": a role whose whole tag map is computed may be a tenant's)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return UNKNOWN

    def __getitem__(self, key: Any) -> Any:
        return UNKNOWN

    def __contains__(self, key: Any) -> bool:
        return True


def tags_of(props: Any) -> dict[str, Any]:
    """`tags` as a map (a list of {key, value}, as autoscaling groups take, too); an unknown value
    is `UNKNOWN`, and unknown tags as a whole are `UnknownTags` (every key `UNKNOWN`)."""
    tags = known(peek(props, "tags"))
    if tags is UNKNOWN:
        return UnknownTags()
    if isinstance(tags, dict):
        return {str(k): v for k, v in tags.items()}
    if isinstance(tags, list):
        return {str(t.get("key")): t.get("value") for t in tags if isinstance(t, dict) and t.get("key") not in (None, UNKNOWN)}
    return {}


def labels_of(props: Any) -> dict[str, Any]:
    """`metadata.labels` as a map; unknown labels as a whole are `UnknownTags` (every key `UNKNOWN`)."""
    labels = known(peek(props, "metadata", "labels"))
    if labels is UNKNOWN:
        return UnknownTags()
    return {str(k): v for k, v in labels.items()} if isinstance(labels, dict) else {}


# --- regions ------------------------------------------------------------------------------------


def provider_default_tags(provider_props: Any) -> dict[str, Any]:
    """`defaultTags.tags` of an AWS provider's inputs (an object, or JSON text as provider inputs may arrive)."""
    default = known(peek(provider_props, "defaultTags"))
    if isinstance(default, str):
        try:
            default = json.loads(default)
        except ValueError:
            return {}
    tags = default.get("tags") if isinstance(default, Mapping) else None
    return {str(k): v for k, v in tags.items()} if isinstance(tags, Mapping) else {}


def stack_tag_maps(stack: Stack) -> list[dict[str, Any]]:
    """The tag maps that tag the stack's AWS resources: each AWS provider's `defaultTags` (which the
    program tags most resources through) and each resource's own `tags` map."""
    maps = [provider_default_tags(p.props) for p in stack.of(AWS_PROVIDER)]
    return maps + [tags_of(r.props) for r in stack.resources if is_map(peek(r.props, "tags"))]


def platform_beside(stack: Stack, config: Mapping[str, Any]) -> bool:
    """A cell's rule sees its platform's resources beside its own (a zone's or a cell's preview):
    what it would leave to the platform (`InPlatform`) is judged on them instead."""
    platform = config.get("platformStack")
    return bool(platform) and any(r.urn.split(":")[2] == platform for r in stack.resources)


def provider_accounts(provider_props: Any) -> set[str]:
    """An AWS provider's `allowedAccountIds` (a list, or JSON text as provider inputs arrive); empty if none or unknown."""
    ids = known(peek(provider_props, "allowedAccountIds"))
    if isinstance(ids, str):
        try:
            ids = json.loads(ids)
        except ValueError:
            ids = [ids]
    return {str(i) for i in as_list(ids) if isinstance(i, (str, int)) and i is not UNKNOWN}


def effective_tags(props: Any, provider_props: Any) -> dict[str, Any]:
    """Provider default tags < `tagsAll` < the resource's own `tags`, as the AWS provider merges them."""
    own = tags_of(props)
    if isinstance(own, UnknownTags):
        return own
    tags_all = known(peek(props, "tagsAll"))
    merged = provider_default_tags(provider_props)
    if isinstance(tags_all, Mapping):
        merged.update({str(k): v for k, v in tags_all.items()})
    merged.update(own)
    return merged


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


def _indexes(resources: list[Any]) -> tuple[dict, dict, dict, dict]:
    by_type: dict[str, list[Any]] = defaultdict(list)
    by_urn: dict[str, Any] = {}
    referrers: dict[str, list[tuple[Any, str]]] = defaultdict(list)  # urn -> [(resource, property)]
    for r in resources:
        by_type[r.resource_type].append(r)
        by_urn[r.urn] = r
        for prop, deps in r.property_dependencies.items():
            for dep in deps:
                referrers[dep.urn].append((r, prop))
    strings: dict[str, tuple[Any, list[str]]] = {}  # urn -> (resource, its texts), filled as read
    return by_type, by_urn, referrers, strings


class Stack:
    """Indexes over the resources of an AnalyzeStack call: by type, and who references whom."""

    def __init__(self, resources: Sequence[Any]):
        """Every stack rule of one AnalyzeStack call indexes the same resources: the indexes are
        built once per call (`sdkhooks.shared`) and only read."""
        self.resources = list(resources)
        self.by_type, self.by_urn, self.referrers, self._strings = shared(
            ("stack", *map(id, self.resources)), lambda: _indexes(self.resources)
        )

    def strings(self, resource: Any) -> list[str]:
        """Every known text in `resource`'s props (`texts_of`), read once per call however many rules and
        indexes of a rule look for ARNs in every resource."""
        hit = self._strings.get(resource.urn)
        if hit is None or hit[0] is not resource:
            hit = self._strings[resource.urn] = (resource, texts_of(resource.props))
        return hit[1]

    def of(self, *types: str) -> list[Any]:
        return [r for t in types for r in self.by_type.get(t, [])]

    def linked(self, resource: Any, prop: str, *types: str) -> list[Any]:
        """Resources of `types` that `resource`'s property `prop` was built from."""
        return [d for d in resource.property_dependencies.get(prop, []) if not types or d.resource_type in types]

    def referring(self, target: Any, prop: str | None, *types: str) -> list[Any]:
        """Resources of `types` whose property `prop` (any, if None) was built from `target`."""
        return [
            r
            for r, p in self.referrers.get(target.urn, [])
            if (prop is None or p == prop) and (not types or r.resource_type in types)
        ]


def key_tenant(stack: Stack, key: Any, tag: str) -> Any:
    """Whose data a KMS key protects (its `tag`): a replica key linked to its primary holds the
    primary's key material, so the primary's owner; any other key, its own tag."""
    if key.resource_type == KMS_REPLICA_KEY:
        primaries = stack.linked(key, "primaryKeyArn", KMS_KEY)
        if primaries:
            return tags_of(primaries[0].props).get(tag)
    return tags_of(key.props).get(tag)


_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:role/(.+)$")


def stack_role(stack: Stack, arn: Any) -> Any | None:
    """The role of the stack whose exact ARN `arn` is (path and name; an auto-name is the logical
    name and a 7-character random suffix); None for a pattern or any other ARN. Raises
    `UnknownValueError` where a role whose `path` is unknown at preview could be the one named."""
    m = _ROLE_ARN.match(arn) if isinstance(arn, str) else None
    if not m or re.search(r"[*?]|\$\{", arn):
        return None
    for role in stack.of(ROLE):
        path = peek(role.props, "path")
        name = peek(role.props, "name")
        named = re.escape(name) if isinstance(name, str) else re.escape(role.name) + "-[0-9a-f]{7}"
        if path is UNKNOWN:  # the ARN's path is the role's own only if the unknown path turns out to be it
            if re.fullmatch(f"(.+/)?{named}", m.group(1)):
                raise unknown(f"role {role.name}", "path")
            continue
        path = str(path or "/").strip("/")
        if re.fullmatch(re.escape(f"{path}/" if path else "") + named, m.group(1)):
            return role
    return None


_AUTONAME = re.compile(r"-[0-9a-f]{7}$")  # Pulumi's auto-naming: `<logical name>-<7 random hex>`


def _bucket_names(stack: Stack) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, Any]]]:
    """The stack's buckets by given name, by logical name (auto-named ones) and by prefix; built once per stack."""
    index = getattr(stack, "_bucket_names", None)
    if index is None:
        given, auto, prefixed = {}, {}, []
        for bucket in stack.of(*S3_BUCKETS):
            name, prefix = known(peek(bucket.props, "bucket")), known(peek(bucket.props, "bucketPrefix"))
            if isinstance(name, str):
                given.setdefault(name, bucket)
            elif isinstance(prefix, str):
                prefixed.append((prefix, bucket))
            elif name is None and prefix is None:
                auto.setdefault(bucket.name, bucket)
        index = stack._bucket_names = (given, auto, prefixed)
    return index


def named_bucket(stack: Stack, name: str) -> Any | None:
    """The stack bucket called `name`: by its `bucket` input, its `bucketPrefix`, or (no name
    given) Pulumi's auto-name from its logical name (`<name>-<7 hex>`). A name none of them
    explains (`<dr-bucket>-archive`, built from the dr bucket's ARN) is no bucket of the stack,
    whatever the property's links say."""
    given, auto, prefixed = _bucket_names(stack)
    if name in given:
        return given[name]
    if _AUTONAME.search(name) and name[:-8] in auto:
        return auto[name[:-8]]
    return next((b for prefix, b in prefixed if name.startswith(prefix)), None)


def _name_unknown(bucket: Any) -> bool:
    """A bucket whose name the plan cannot tell (its `bucket` or `bucketPrefix` is another resource's output)."""
    return known(peek(bucket.props, "bucket")) is UNKNOWN or known(peek(bucket.props, "bucketPrefix")) is UNKNOWN


def setting_bucket(stack: Stack, setting: Any) -> Any:
    """The bucket a bucket setting (versioning, encryption, public access block, policy, lifecycle...)
    applies to: AWS applies it to the bucket its `bucket` names, so a known name decides
    (`named_bucket`: given name, prefix or auto-name), whatever the links say; a link to one bucket
    decides only where the name is not known yet (a first preview), or where the linked bucket's
    own name is unknown. Raises `UnknownValueError` if neither tells; returns an `Unverifiable`
    (never a pass) for a name no bucket of the stack has."""
    name = known(peek(setting.props, "bucket"))
    linked = stack.linked(setting, "bucket", *S3_BUCKETS)
    if isinstance(name, str):
        bucket = named_bucket(stack, name)
        if bucket is not None:
            return bucket
        unnamed = [b for b in linked if _name_unknown(b)]
        if len(unnamed) == 1:
            return unnamed[0]
        return Unverifiable(
            f"names bucket {name!r}, which is no bucket of this stack (by given name, prefix or Pulumi auto-name): "
            "what it sets on that bucket is not judged here"
        )
    if len(linked) == 1:
        return linked[0]
    raise unknown("bucket")


BUCKET_SETTINGS = (
    "A bucket setting applies to the bucket its `bucket` names (given name, prefix or Pulumi auto-name; a link decides "
    "only where the name is unknown at preview); every setting applying to one bucket is judged, so the weakest decides; "
    "a setting whose bucket cannot be resolved is an advisory naming it."
)


def judged_bucket(stack: Stack, setting: Any) -> Any | None:
    """The stack's bucket a bucket setting (policy, logging, SSE, ...) applies to, or None when that is
    unknown at preview or no bucket of the stack: the bucket rules report those (and a cell's lane the
    platform's), so a rule judging the bucket's data passes them on."""
    try:
        bucket = setting_bucket(stack, setting)
    except UnknownValueError:
        return None
    return None if isinstance(bucket, Unverifiable) else bucket


def buckets_with(stack: Stack, *sub_types: str) -> tuple[dict[str, list[Any]], list[tuple[str | None, str]]]:
    """Bucket URN -> the settings of `sub_types` that apply to it (`setting_bucket`), and an advisory
    finding for each setting whose bucket cannot be resolved (never silently skipped)."""
    out: dict[str, list[Any]] = {b.urn: [] for b in stack.of(*S3_BUCKETS)}
    unresolved: list[tuple[str | None, str]] = []
    for sub in stack.of(*sub_types):
        kind = sub.resource_type.rsplit(":", 1)[-1]
        try:
            target = setting_bucket(stack, sub)
        except UnknownValueError as exc:
            unresolved.append((sub.urn, Unverifiable.of(exc, f"the bucket this {kind} applies to")))
            continue
        if isinstance(target, Unverifiable):
            unresolved.append((sub.urn, Unverifiable(f"{kind} {sub.name} {target}")))
        else:
            out.setdefault(target.urn, []).append(sub)
    return out, unresolved


def judge_buckets(
    stack: Stack, sub_types: Iterable[str], judge: Callable[[Any, list[Any]], list[tuple[str | None, str]]]
) -> list[tuple[str | None, str]]:
    """Judge every S3 bucket, one by one (`judge_each`), with every setting of `sub_types` that
    applies to it (`buckets_with`; each is judged, so the weakest decides): `judge(bucket, subs)`;
    plus an advisory for each setting whose bucket is not resolved."""
    subs, unresolved = buckets_with(stack, *sub_types)
    return judge_each(stack.of(*S3_BUCKETS), lambda bucket: judge(bucket, subs.get(bucket.urn, []))) + unresolved
