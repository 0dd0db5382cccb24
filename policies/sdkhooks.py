"""Every use of pulumi-policy's private internals, behind one version check.

The pack reads and patches internals the SDK does not promise to keep: `proxy._is_unknown`, the
closure of the `report` callable it hands a policy, and its analyzer servicer's Analyze and
AnalyzeStack. They were written against one release (`SDK_VERSION`); `install()`, called by
`__main__.py` before the pack's server starts, refuses any other release with an error naming
both versions, instead of letting a moved internal silently change a verdict.

Decoding once per request, not once per policy: pulumi-policy 1.x turns a resource's properties
into a dict and an unknown-checking proxy inside its loop over policies: with 25 resource rules
every Analyze decodes the same message 25 times, and AnalyzeStack decodes every resource once per
stack rule. Measured offline on the us stack at 200 tenants (5,700 resources), that decoding is
nearly all of the analyzer's CPU. `install` memoises the three steps by the identity of what they
are given, for the duration of one Analyze / AnalyzeStack call (per thread: the server runs calls
concurrently), holding a reference so an identity is never reused within a call. The rules never
mutate the props they read, so every policy seeing the same proxy changes nothing.

Two more savings, with the SDK's own semantics kept (same diagnostics, same order):
- Analyze hands a resource only to the resource rules whose `applies_to(type)` (set by
  `ruleutil.resource_policy`) accepts its type; a rule without it always runs. The others would
  return at once, after the SDK built their arguments (options, provider, config copy, report).
- AnalyzeStack builds the stack's `PolicyResource`s (parent, dependencies, property dependencies
  linked) once for all stack rules instead of once per rule: that loop was most of AnalyzeStack.
"""

from __future__ import annotations

import asyncio
import copy
import math
import threading
import types
from collections.abc import Callable
from inspect import isawaitable
from typing import Any

from google.protobuf import json_format
from pulumi_policy import policy as sdk
from pulumi_policy.proxy import _is_unknown
from pulumi_policy.version import VERSION as INSTALLED

# The pulumi-policy release every hook below was written against and tested with (constraints.txt
# and requirements.txt pin it; tests/test_policy_sdkhooks.py fails when they drift apart).
SDK_VERSION = "1.21.0"


class SdkVersionError(RuntimeError):
    """The installed pulumi-policy is not the release the hooks were written against."""


def require_sdk(installed: str = INSTALLED) -> None:
    """Refuse to run the hooks on any pulumi-policy but the one they read the internals of."""
    if installed != SDK_VERSION:
        raise SdkVersionError(
            f"policies/sdkhooks.py reads pulumi-policy internals as of {SDK_VERSION}, but pulumi-policy {installed} "
            f"is installed: install pulumi-policy=={SDK_VERSION} (constraints.txt), or port the hooks to {installed} "
            "and raise SDK_VERSION with them"
        )


# --- what the rules read ---------------------------------------------------------------------


def is_unknown(value: Any) -> bool:
    """Whether `value` is the engine's sentinel for a value only known after apply (any of its kinds)."""
    return _is_unknown(value)


def advisory_reporter(report: Callable[..., None]) -> Callable[..., None] | None:
    """The SDK's `report` is bound to the policy's level; this builds its advisory twin
    the way the SDK built `report` (`_create_report_violation`, whose closure holds the servicer,
    the response and the policy's name, description and severity). None if the closure is not
    that shape (the caller then falls back to the SDK's own "can't run" diagnostic)."""
    try:
        cells = dict(zip(report.__code__.co_freevars, (c.cell_contents for c in report.__closure__ or ()), strict=True))
        return cells["self"]._create_report_violation(
            cells["response"],
            cells["policy_name"],
            cells["policy_description"],
            sdk.EnforcementLevel.ADVISORY,
            cells.get("severity"),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


# --- decoding once per request ----------------------------------------------------------------

_local = threading.local()


def _memo(fn: Callable[..., Any]) -> Callable[..., Any]:
    def cached(value: Any, *args: Any, **kwargs: Any) -> Any:
        cache = getattr(_local, "cache", None)
        if cache is None or args or kwargs:
            return fn(value, *args, **kwargs)
        key = (fn, id(value))
        hit = cache.get(key)
        if hit is not None and hit[0] is value:
            return hit[1]
        result = fn(value)
        cache[key] = (value, result)
        return result

    return cached


def _struct_to_dict(struct: Any) -> dict[str, Any]:
    """`json_format.MessageToDict` of a `google.protobuf.Struct`, without the generic printer's
    dispatch on field descriptors per value (the same values: a Struct holds only null, number,
    string, bool, list and struct; a NaN or infinite number refused with the printer's error)."""
    fields = struct.fields
    return {key: _value_to_python(fields[key]) for key in fields}


def _value_to_python(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return _struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value_to_python(v) for v in value.list_value.values]
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        number = value.number_value
        if math.isinf(number) or math.isnan(number):
            return json_format.MessageToDict(value)  # raises the printer's ValueError
        return number
    return None  # null_value, or unset (the printer's null too)


def _message_to_dict(message: Any, *args: Any, **kwargs: Any) -> Any:
    if not args and not kwargs and message.DESCRIPTOR.full_name == "google.protobuf.Struct":
        return _struct_to_dict(message)
    return json_format.MessageToDict(message, *args, **kwargs)


def shared(key: tuple, build: Callable[[], Any]) -> Any:
    """`build()` once per Analyze / AnalyzeStack call for `key`, for every rule of the call that
    asks (outside a call, e.g. a rule's check run directly, built every time). The key names what is
    built and from which objects (their ids: the call holds them, so no id is reused within it)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        return build()
    key = ("shared", *key)
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _per_call(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, request: Any, context: Any) -> Any:
        _local.cache = {}
        try:
            return method(self, request, context)
        finally:
            _local.cache = None

    return call


def _dispatching(analyze: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK's Analyze, run on a shallow copy of the servicer that lists only the policies that
    can apply to the resource's type (the copy is per call: Configure may replace the config meanwhile)."""
    by_type: dict[tuple[int, str], list[Any]] = {}

    def applicable(policies: list[Any], type_: str) -> list[Any]:
        key = (id(policies), type_)
        hit = by_type.get(key)
        if hit is None or hit[0] is not policies:
            hit = by_type[key] = (
                policies,
                [
                    p
                    for p in policies
                    if not isinstance(p, sdk.ResourceValidationPolicy) or getattr(p, "applies_to", lambda _t: True)(type_)
                ],
            )
        return hit[1]

    def call(self: Any, request: Any, context: Any) -> Any:
        view = copy.copy(self)
        view._PolicyAnalyzerServicer__policies = applicable(self._PolicyAnalyzerServicer__policies, request.type)
        return analyze(view, request, context)

    return call


def _stack_resources(self: Any, request: Any) -> list[Any]:
    """The SDK's AnalyzeStack resources (pulumi-policy 1.21, `AnalyzeStack`'s inner loop), built once.
    Every resource carries a copy of its provider; each distinct provider is decoded once."""
    resources, links = [], []
    providers: dict[tuple[bool, bytes], Any] = {}
    for r in request.resources:
        props = sdk.unknown_checking_proxy(sdk.deserialize_properties(sdk.json_format.MessageToDict(r.properties)))
        has_provider = r.HasField("provider")
        key = (has_provider, r.provider.SerializeToString(deterministic=True) if has_provider else b"")
        if key not in providers:
            providers[key] = self._get_provider_resource(r)
        resource = sdk.PolicyResource(r.type, props, r.urn, r.name, self._get_resource_options(r), providers[key], None, [], {})
        resources.append(resource)
        links.append((r.parent, list(r.dependencies), {k: list(v.urns) for k, v in r.propertyDependencies.items()}))
    by_urn = {res.urn: res for res in resources}
    for resource, (parent, dependencies, property_dependencies) in zip(resources, links, strict=True):
        if parent is not None and parent in by_urn:
            resource.parent = by_urn[parent]
        resource.dependencies.extend(by_urn[d] for d in dependencies if d in by_urn)
        for prop, urns in property_dependencies.items():
            resource.property_dependencies[prop] = [by_urn[d] for d in urns if d in by_urn]
    return resources


def _analyze_stack() -> Callable[..., Any]:
    """pulumi-policy 1.21's AnalyzeStack with the resources built once for every stack policy."""
    level_enum, proto = sdk.EnforcementLevel, sdk.proto

    def call(self: Any, request: Any, _context: Any) -> Any:
        self._configure_runtime_settings()
        response = proto.AnalyzeResponse()
        resources = None
        for policy in self._PolicyAnalyzerServicer__policies:
            level = self._get_enforcement_level(policy)
            if level == level_enum.DISABLED or not isinstance(policy, sdk.StackValidationPolicy):
                continue
            if level == level_enum.REMEDIATE:
                level = level_enum.MANDATORY  # stack policies cannot remediate: as the SDK does
            report = self._create_report_violation(response, policy.name, policy.description, level, policy.severity)
            if resources is None:
                resources = _stack_resources(self, request)
            args = sdk.StackValidationArgs(
                list(resources), self._get_policy_config(policy.name), self._PolicyAnalyzerServicer__stack_tags
            )
            try:
                result = policy.validate(args, report)
                if isawaitable(result):
                    loop = asyncio.new_event_loop()
                    loop.run_until_complete(asyncio.Task(result, loop=loop))
                    loop.close()
            except sdk.UnknownValueError as e:
                name, version = self._PolicyAnalyzerServicer__policy_pack_name, self._PolicyAnalyzerServicer__policy_pack_version
                response.diagnostics.append(
                    proto.AnalyzeDiagnostic(
                        policyName=policy.name,
                        policyPackName=name,
                        policyPackVersion=version,
                        message=f"can't run policy '{policy.name}' from policy pack '{name}@v{version}' during preview: {e.message}",
                        urn="",
                        description=policy.description,
                        enforcementLevel=self._map_enforcement_level(level_enum.ADVISORY),
                    )
                )
            except sdk._NotApplicableError as e:
                response.not_applicable.append(proto.PolicyNotApplicable(policy_name=policy.name, reason=e.reason or ""))
        return response

    return call


def install() -> None:
    """Check the SDK's version, then memoise its decoding for the analyzer in this process and
    dispatch each resource to the rules that apply (before the pack's server starts)."""
    require_sdk()
    servicer = sdk._PolicyAnalyzerServicer
    json_format = sdk.json_format
    shim = types.SimpleNamespace(**{k: getattr(json_format, k) for k in dir(json_format) if not k.startswith("__")})
    shim.MessageToDict = _memo(_message_to_dict)
    sdk.json_format = shim
    sdk.deserialize_properties = _memo(sdk.deserialize_properties)
    sdk.unknown_checking_proxy = _memo(sdk.unknown_checking_proxy)
    servicer.Analyze = _per_call(_dispatching(servicer.Analyze))
    servicer.AnalyzeStack = _per_call(_analyze_stack())
