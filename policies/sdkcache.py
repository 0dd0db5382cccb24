"""Decode each resource once per request, not once per policy.

pulumi-policy 1.x turns a resource's properties into a dict and an unknown-checking proxy inside
its loop over policies: with 25 resource rules every Analyze decodes the same message 25 times,
and AnalyzeStack decodes every resource once per stack rule. Measured offline on the us stack at
200 tenants (5,700 resources), that decoding is nearly all of the analyzer's CPU. This module
memoises the three steps by the identity of what they are given, for the duration of one
Analyze / AnalyzeStack call (per thread: the server runs calls concurrently), holding a reference
so an identity is never reused within a call. The rules never mutate the props they read, so
every policy seeing the same proxy changes nothing. If the SDK's internals differ from what this
expects, `install` does nothing and the SDK runs as shipped.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

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


def _per_call(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, request: Any, context: Any) -> Any:
        _local.cache = {}
        try:
            return method(self, request, context)
        finally:
            _local.cache = None

    return call


def install() -> bool:
    """Memoise the SDK's decoding for the analyzer in this process; False if the SDK does not look as expected."""
    try:
        from pulumi_policy import policy as sdk

        servicer = sdk._PolicyAnalyzerServicer
        json_format, deserialize, proxy = sdk.json_format, sdk.deserialize_properties, sdk.unknown_checking_proxy
        analyze, analyze_stack = servicer.Analyze, servicer.AnalyzeStack
    except (ImportError, AttributeError):
        return False
    shim = types.SimpleNamespace(**{k: getattr(json_format, k) for k in dir(json_format) if not k.startswith("__")})
    shim.MessageToDict = _memo(json_format.MessageToDict)
    sdk.json_format = shim
    sdk.deserialize_properties = _memo(deserialize)
    sdk.unknown_checking_proxy = _memo(proxy)
    servicer.Analyze = _per_call(analyze)
    servicer.AnalyzeStack = _per_call(analyze_stack)
    return True
