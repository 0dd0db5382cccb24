"""The generic pass of aws-data-path-destination-in-zone: every ARN, S3 bucket name, AWS regional host
name, SDK endpoint override and DNS record target in any resource's inputs is placed, whatever property
holds it. Text is read as AWS resolves it: hosts and ARNs whatever their case; a bucket by ARN, by
`s3://` URI, by its endpoint host (virtual-hosted or path style, regional, legacy global or website) or
by name under a key that ends in a bucket word; an alias record's target as a CNAME's; and the
properties AWS takes base64-encoded (BASE64_PROPS), decoded (and gunzipped) first. No other encoding
is read. The rule's list of paths (destinations.py) stays for its messages; this pass catches what
the list does not name (a target's or a queue's dead-letter queue, a pipe's log destination, a budget's
topics, a load balancer's log buckets, a record's target, a function's layers...).

A reference passes when it is in an allowed region and an account the stack declares; when it names
a resource of this stack (whose own region is aws-resource-region-allowed's, with its reasoned
exceptions); or when it is on the reviewed lists below, each with its reason and source. A reference
only known after apply is an advisory naming the property (linked to a stack resource or not: a value
built from a resource's output can still name somewhere else), judged again at `pulumi up`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from collections.abc import Iterator
from typing import Any

from ruleutil import UNKNOWN, Unverifiable, known, named_bucket, resource_region

# `arn:partition:service:region:account:resource`, inside any text (policy documents, JSON settings).
# Case-insensitive, compared in lower case: an ARN whose region is written in capitals names that region or none.
ARN = re.compile(r"arn:(aws[a-z-]*):([a-z0-9-]+):([^:\s\"',]*):([^:\s\"',]*):([^\s\"',}\]]+)", re.I)
# A host of an AWS domain; its region is one of its labels (`x.us-east-1.elb.amazonaws.com`,
# `s3-website-us-east-1.amazonaws.com`, `x.lambda-url.us-east-1.on.aws`, `s3.dualstack.us-east-1.api.aws`).
HOST = re.compile(r"(?<![\w.-])((?:[a-z0-9_-]+\.)+(?:amazonaws\.com(?:\.cn)?|on\.aws|api\.aws))\.?(?![\w.-])", re.I)
REGION_LABEL = re.compile(r"(?:^|-)([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)$")
PATTERN = re.compile(r"[*?]|\$\{")
# `s3://bucket/key` (AWS CLI, Athena, Glue, EMR) and Hadoop's `s3a://` / `s3n://`: the bucket is the authority.
S3_URI = re.compile(r"(?<![\w+.-])s3[an]?://([^/\s\"',?#]+)", re.I)
# The S3 endpoint label of a bucket's host: `s3`, `s3-<region>`, `s3-website-<region>`, `s3-website` (before
# `.<region>`), `s3-accelerate`, `s3-external-1`, `s3-fips`; the bucket is the labels before it (virtual-hosted),
# else the first path segment (path style). https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html,
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/WebsiteEndpoints.html. Access point, Object Lambda,
# Outposts and S3 Control hosts name no bucket (their region is judged as any host's).
S3_LABEL = re.compile(r"^s3(?:-(?!accesspoint|control|outposts|object-lambda)[a-z0-9-]+)?$")
PATH_SEGMENT = re.compile(r"/([^/\s\"',?#]+)")
# Keys whose value says where data goes: an unknown value under one is reported, never assumed in the zone.
DESTINATION_KEY = re.compile(
    r"(?i)(arns?|buckets?|bucketname|records|endpoint|endpoints|url|uri|redrivepolicy|destination|target|layers|"
    r"hostname|host|domainname|registryid)$"
)
# Keys naming who acts (an IAM role or policy), not where data goes: placed when known, not reported when unknown.
PRINCIPAL_KEY = re.compile(r"(?i)(role|role[-_]?arns?|policy[-_]?arns?)$")
# Properties naming the caller a permission admits: data comes from there, none goes; who may call is the access
# rules' claim (resource-policy-principals-in-account). From the pulumi-aws schema, the only resources whose
# `sourceArn` / `sourceAccount` name a caller: aws:lambda/permission ("ARN of the source resource granting permission
# to invoke the Lambda function"; "AWS account ID of the source owner") and aws:acmpca/permission ("ID of the calling
# account"). Elsewhere the same names are data sources (rds and redshift integrations, an RDS export task's snapshot,
# a schema discoverer's bus, Cognito's SES identity) and are placed like any property.
CALLER_PROPS = {
    "aws:lambda/permission:Permission": ("sourceArn", "sourceAccount"),
    "aws:acmpca/permission:Permission": ("sourceAccount",),
}
# Properties AWS takes base64-encoded (pulumi-aws docs: "The base64-encoded user data", "Base64 encoded user data",
# "A shell script (base64-encoded)", "must be base64 encoded", "Needs to be encoded to base64", "Base64-encoded
# data ... uploaded as raw bytes"): scripts, configuration and content, decoded (gunzipped when gzip, as cloud-init
# takes it) and read as text besides the encoded form. Images (Transfer web app logos) and key material are not text.
BASE64_PROPS = {
    "aws:ec2/launchTemplate:LaunchTemplate": ("userData",),
    "aws:ec2/instance:Instance": ("userDataBase64",),
    "aws:ec2/spotInstanceRequest:SpotInstanceRequest": ("userDataBase64",),
    "aws:ec2/launchConfiguration:LaunchConfiguration": ("userDataBase64",),
    "aws:imagebuilder/imageRecipe:ImageRecipe": ("userDataBase64",),
    "aws:sagemaker/notebookInstanceLifecycleConfiguration:NotebookInstanceLifecycleConfiguration": ("onCreate", "onStart"),
    "aws:sagemaker/studioLifecycleConfig:StudioLifecycleConfig": ("studioLifecycleConfigContent",),
    "aws:mskconnect/workerConfiguration:WorkerConfiguration": ("propertiesFileContent",),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretBinary",),
    "aws:s3/bucketObject:BucketObject": ("contentBase64",),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("contentBase64",),
}
# Keys (or `{name, value}` entries' names) holding an S3 bucket by name, ending in a bucket word: `bucket`,
# `targetBucket`, `EXPORT_BUCKET`, `s3BucketName`, `LOG_BUCKETS`; not `bucketRegion`, `bucketOwner`, `bucketKeyEnabled`.
# A bucket resource's own top-level `bucket` is its subject, not a destination.
BUCKET_KEY = re.compile(r"(?i)bucket(?:s|[-_]?names?)?$")
# The AWS SDKs' endpoint override (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html):
# every API call of the process goes to that host, signed with its role.
ENDPOINT_OVERRIDE = re.compile(r"^AWS_ENDPOINT_URL(_[A-Z0-9_]+)?$")
RECORD = "aws:route53/record:Record"

# Services whose ARNs carry no region because the service is global, each with why it cannot leave a zone.
GLOBAL_SERVICES = {
    "iam": "identities and policies: who may act is the access rules' claim (resource-policy-principals-in-account, "
    "tenant-data-access), not a place data lands",
    "sts": "sessions of IAM roles: as iam",
    "organizations": "the organisation itself: no data of the zone",
    "route53": "hosted zones and health checks: the records' targets are judged here as hosts",
    "budgets": "budgets: only amounts; their notification topics are judged by their own ARNs",
    "ce": "Cost Explorer: billing data of the account, global",
    "cur": "Cost and Usage Reports: billing data, its bucket judged by name",
}
# Account-level ARNs AWS owns: `arn:aws:iam::aws:policy/...`, `arn:aws:eks::aws:cluster-access-policy/...`.
AWS_OWNED_ACCOUNT = "aws"
# Reviewed ARNs of another account or region that carry no data of the zone: (prefix, reason with source).
REVIEWED_ARNS = (
    (
        "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManager",
        "the AWS-published Secrets Manager rotation applications (account 297356227824, published from us-east-1, "
        "deployed into the stack's own region: code in, no data out; "
        "https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_available-rotation-templates.html)",
    ),
)
# S3's service principals (server access logging, Batch Operations, Access Grants), not buckets on the legacy global
# endpoint: https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html,
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html,
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-grants-location-register.html
S3_SERVICE_PRINCIPALS = {"logging.s3.amazonaws.com", "batchoperations.s3.amazonaws.com", "access-grants.s3.amazonaws.com"}
# Reviewed hosts outside AWS's regional domains a DNS record may target: (suffix, record name prefix, reason).
ACM_VALIDATION = (
    ".acm-validations.aws"  # ACM DNS validation CNAMEs (https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html)
)


class Scan:
    """One stack's places: allowed regions, its accounts, its names (buckets, records, resources by region)."""

    def __init__(self, stack: Any, allowed: set[str], accounts: set[str], allow_edge: bool):
        self.stack, self.allowed, self.accounts, self.allow_edge = stack, allowed, accounts, allow_edge
        self.zone = ", ".join(sorted(allowed))
        self._names: dict[str, set[str]] | None = None
        self.record_names = {
            str(n).rstrip(".").lower() for r in stack.of(RECORD) if isinstance(n := known(_get(r.props, "name")), str)
        }

    def names_in(self, region: str) -> set[str]:
        """The names of this stack's resources in `region` (given `name`, or logical name for Pulumi's `-<7 hex>` auto-name)."""
        if self._names is None:
            self._names = {}
            for r in self.stack.resources:
                region_of = resource_region(r) if r.resource_type.startswith("aws:") else None
                if region_of:
                    given = known(_get(r.props, "name"))
                    self._names.setdefault(region_of, set()).add(given if isinstance(given, str) else f"~{r.name}")
        return self._names.get(region, set())

    def names_stack_resource(self, region: str, resource: str) -> bool:
        last = re.split(r"[:/]", resource)[-1]
        names = self.names_in(region)
        return last in names or (re.search(r"-[0-9a-f]{7}$", last) is not None and f"~{last[:-8]}" in names)


def _get(props: Any, key: str) -> Any:
    try:
        return props.get(key) if hasattr(props, "get") else None
    except Exception:  # an unknown value raises in the SDK's proxies  # noqa: BLE001
        return UNKNOWN


def leaves(props: Any) -> Iterator[tuple[str, str, Any, Any]]:
    """(path, key, value, parent) for every leaf of `props` (unknowns as `UNKNOWN`), one walk."""
    todo: list[tuple[str, str, Any, Any]] = [("", "", known(props), None)]
    while todo:
        path, key, value, parent = todo.pop()
        if isinstance(value, dict):
            todo.extend((f"{path}.{k}" if path else k, k, v, value) for k, v in value.items())
        elif isinstance(value, list):
            todo.extend((f"{path}.{i}", key, v, value) for i, v in enumerate(value))
        else:
            yield path, key, value, parent


def arn_problem(scan: Scan, arn: re.Match) -> str | None:
    """Why an ARN lands outside the zone, or None."""
    partition, service, region, account, resource = arn.groups()
    service, region, text = service.lower(), region.lower(), arn.group(0)
    if any(text.startswith(prefix) for prefix, _ in REVIEWED_ARNS):
        return None
    if PATTERN.search(region) or PATTERN.search(account):
        return None  # a pattern scopes a permission (the access rules'), it names no destination
    if service == "s3" and not region:
        problem = bucket_problem(scan, resource.split("/", 1)[0])
        return f"{text}: {problem}" if problem else None
    if service == "cloudfront":
        return None if scan.allow_edge else f"{text} is CloudFront, served from edges in every region"
    if not region:
        if service in GLOBAL_SERVICES or account == AWS_OWNED_ACCOUNT:
            return None
        return f"{text} names no region, and {service} is not on the reviewed list of global services"
    if region not in scan.allowed and not scan.names_stack_resource(region, resource):
        return f"{text} is in {region}"
    if service in ("iam", "sts") or not account or account == AWS_OWNED_ACCOUNT:
        return None
    if not scan.accounts:
        return f"{text} is in account {account}, and no AWS provider declares `allowedAccountIds` to tell it from a foreign one"
    if account not in scan.accounts:
        return f"{text} is in account {account}, not the stack's ({', '.join(sorted(scan.accounts))})"
    return None


def bucket_problem(scan: Scan, name: str) -> str | None:
    """Why bucket `name` lands outside the zone (no bucket of the stack, or one of it out of the zone), or None."""
    if PATTERN.search(name):
        return None  # a pattern scopes a permission (the access rules'), it names no destination
    bucket = named_bucket(scan.stack, name)
    if bucket is None:
        return f"bucket {name!r} is no bucket of this stack: its region and owner cannot be placed"
    where = resource_region(bucket)
    return None if where in scan.allowed else f"bucket {name!r} is in {where}"


def host_bucket(host: str, rest: str) -> str | None:
    """The bucket an S3 endpoint host names: the labels before its S3 label (virtual-hosted), else the first
    segment of the path `rest` that follows the host (path style); None for no S3 host or no bucket."""
    labels = host.lower().rstrip(".").split(".")
    at = next((i for i, label in enumerate(labels) if S3_LABEL.match(label)), None)
    if at is None or ".".join(labels) in S3_SERVICE_PRINCIPALS:
        return None
    named = labels[:at]
    if named and named[-1].startswith("vpce-"):
        named.pop()  # an interface endpoint's name: `bucket.vpce-<id>.s3.<region>.vpce.amazonaws.com`
    if named:
        return ".".join(named)
    segment = PATH_SEGMENT.match(rest)
    return segment.group(1) if segment else None


def host_problem(scan: Scan, host: str, rest: str = "") -> str | None:
    """Why an AWS host (followed in its text by `rest`) lands outside the zone: a region label out of it, or the
    bucket of an S3 endpoint judged as any bucket (the legacy global endpoint carries no region)."""
    regions = [m.group(1) for label in host.lower().split(".") if (m := REGION_LABEL.search(label))]
    outside = [r for r in regions if r not in scan.allowed]
    if outside:
        return f"host {host} is in {outside[0]}"
    bucket = host_bucket(host, rest)
    problem = bucket_problem(scan, bucket) if bucket else None
    # no region label and no bucket: a global AWS endpoint (iam.amazonaws.com, a service principal): nowhere to leave
    return f"host {host}: {problem}" if problem else None


def outside_host_problem(scan: Scan, host: str, record_name: str) -> str | None:
    """A DNS record's target: an AWS regional host (judged as any host), the stack's own names, or an ACM validation."""
    name = host.rstrip(".").lower()
    if HOST.fullmatch(name):
        return host_problem(scan, name)  # an S3 website endpoint's bucket included
    if name in scan.record_names or any(name.endswith("." + own) for own in scan.record_names):
        return None
    if name.endswith(ACM_VALIDATION) and record_name.startswith("_"):
        return None
    if name.endswith(".cloudfront.net") and scan.allow_edge:
        return None
    return f"target {host} is a host outside AWS's regional names and none of the stack's own names"


def text_problem(scan: Scan, text: str) -> str | None:
    """The first ARN, AWS host or S3 URI in `text` that lands outside the zone."""
    low = text.lower()  # what the pass reads at all, in any case (a plain `in` is 3x faster than one regex)
    if not ("arn:" in low or ".aws" in low or "amazonaws" in low or ("s3" in low and "://" in low)):
        return None  # no ARN, AWS host or S3 URI: no AWS destination
    return (
        next((p for m in ARN.finditer(text) if (p := arn_problem(scan, m))), None)
        or next((p for m in HOST.finditer(text) if (p := host_problem(scan, m.group(1), text[m.end() :]))), None)
        or next((f"{m.group(0)}: {p}" for m in S3_URI.finditer(text) if (p := bucket_problem(scan, m.group(1)))), None)
    )


def _decoded(value: str) -> str | None:
    """The text of a value AWS takes base64-encoded (gunzipped when gzip); None if it does not decode."""
    try:
        raw = base64.b64decode(value, validate=False)
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (binascii.Error, ValueError, EOFError, OSError, zlib.error):
        return None  # not base64 (or a broken gzip): AWS refuses it, and the value was read as written
    return raw.decode("utf-8", errors="replace")


def skipped(path: str, skip: set[str]) -> bool:
    """`path` is, holds or lies inside a property a named path judges."""
    return any(path == s or path.startswith(s + ".") or s.startswith(path + ".") for s in skip)


def scan_resource(scan: Scan, r: Any, skip: set[str]) -> list[tuple[str | None, str]]:
    """The generic pass over one resource; `skip`: property paths a named path judges (of this rule or another)."""
    original = getattr(r, "original_type", r.resource_type)
    what = original.rsplit(":", 1)[-1]
    own_subject = r.resource_type.startswith(("aws:s3/", "aws:s3control/"))
    callers = CALLER_PROPS.get(r.resource_type, ())
    encoded = BASE64_PROPS.get(original, ()) or BASE64_PROPS.get(r.resource_type, ())
    problems: dict[str, str] = {}  # path -> first problem: one finding per property
    unknowns: list[str] = []
    record_name = str(known(_get(r.props, "name")) or "").lower()
    # a record's targets: an alias's (any type) and a CNAME's records; an A/AAAA record's records are addresses
    record_type = str(known(_get(r.props, "type")) or "").upper() if r.resource_type == RECORD else None
    for path, key, value, parent in leaves(r.props):
        top = path.split(".", 1)[0]
        if (skip and skipped(path, skip)) or path in callers:
            continue
        alias_target = record_type is not None and path.startswith("aliases.") and key == "name"
        if value is UNKNOWN:
            if alias_target or (DESTINATION_KEY.search(key) and not PRINCIPAL_KEY.search(key)):
                unknowns.append(path)
            continue
        if not isinstance(value, str):
            continue
        # a `{name, value}` entry (a container's or function's environment) is keyed by its name
        named = parent.get("name") if key == "value" and isinstance(parent, dict) else None
        name = named if isinstance(named, str) else key
        found = None
        if alias_target or (record_type == "CNAME" and top == "records"):
            found = outside_host_problem(scan, value, record_name)
        elif (
            BUCKET_KEY.search(name)
            and not (own_subject and path == key)
            and not value.startswith("arn:")
            and "://" not in value
            and not HOST.fullmatch(value)  # a bucket's host (CloudFront's `logging_config.bucket`): judged as a host
        ):
            found = bucket_problem(scan, value)
        elif ENDPOINT_OVERRIDE.match(name):
            host = re.sub(r"^[a-z]+://", "", value).split("/", 1)[0].split(":", 1)[0]
            found = (
                host_problem(scan, host)
                if HOST.fullmatch(host)
                else f"SDK endpoint override {value!r} is not an AWS regional endpoint"
            )
        if found is None:
            found = text_problem(scan, value)
        if found is None and path in encoded and (text := _decoded(value)) is not None:
            found = text_problem(scan, text)
        if found is not None:
            problems.setdefault(path, found)
    out: list[tuple[str | None, str]] = [
        (r.urn, f"{what} {path} must stay in the zone ({scan.zone}) and the stack's account: {problem}")
        for path, problem in sorted(problems.items())
    ]
    if unknowns:  # one advisory per resource, naming every such property
        where = ", ".join(sorted(set(unknowns)))
        out.append(
            (
                r.urn,
                Unverifiable(
                    f"unverifiable at preview: {where} ({what}: where the data goes is only known after apply, "
                    "never assumed in the zone); the rule judges it at `pulumi up`, when the value is known"
                ),
            )
        )
    return out
