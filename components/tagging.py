"""Stack-wide tagging and the per-region AWS providers it reads the region from.

One stack transformation tags every taggable AWS resource with `meridian:stack`, `meridian:zone`,
`meridian:region` and `meridian:cost-center`. Precedence: stack defaults < component < caller,
so a tag a component or caller sets (e.g. `meridian:tenant`) is never overwritten.
"""

from __future__ import annotations

import functools
import inspect

import pulumi
import pulumi_aws as aws

TAG_STACK = "meridian:stack"
TAG_ZONE = "meridian:zone"
TAG_REGION = "meridian:region"
TAG_COST_CENTER = "meridian:cost-center"
TAG_TENANT = "meridian:tenant"

# Types whose `tags` argument is not a plain map (tags there are a list of objects).
_NON_MAP_TAGS = {"aws:autoscaling/group:Group"}

# id(provider) -> region. Providers live for the whole program, so ids stay valid.
_PROVIDER_REGION: dict[int, str] = {}


_PROVIDERS: dict[str, aws.Provider] = {}


def regional_provider(region: str) -> aws.Provider:
    """The one explicit AWS provider of a region, named after it; every regional resource uses one."""
    if region not in _PROVIDERS:
        provider = aws.Provider(region, region=region)
        _PROVIDER_REGION[id(provider)] = region
        _PROVIDERS[region] = provider
    return _PROVIDERS[region]


@functools.cache
def _takes_map_tags(cls: type) -> bool:
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def _region_of(args: pulumi.ResourceTransformationArgs) -> str | None:
    explicit = args.props.get("region")
    if isinstance(explicit, str):
        return explicit  # pulumi-aws 7 per-resource region overrides the provider's
    provider = args.opts.provider if args.opts else None
    parent = args.opts.parent if args.opts else None
    if provider is None and parent is not None:
        provider = parent.get_provider(args.type_)
    return _PROVIDER_REGION.get(id(provider)) if provider is not None else None


def stack_tags(stack: str, zone: str, cost_center: str) -> dict[str, str]:
    return {TAG_STACK: stack, TAG_ZONE: zone, TAG_COST_CENTER: cost_center}


def register_stack_tags(stack: str, zone: str, cost_center: str) -> None:
    """Install the stack transformation; call once, before any resource is created."""
    defaults = stack_tags(stack, zone, cost_center)

    def tag(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not args.type_.startswith("aws:") or args.type_ in _NON_MAP_TAGS:
            return None
        if not _takes_map_tags(type(args.resource)):
            return None
        tags = dict(defaults)
        region = _region_of(args)
        if region is not None:
            tags[TAG_REGION] = region
        own = args.props.get("tags")
        if isinstance(own, pulumi.Output):
            merged = own.apply(lambda o: {**tags, **(o or {})})
        else:
            merged = {**tags, **(own or {})}
        return pulumi.ResourceTransformationResult(props={**args.props, "tags": merged}, opts=args.opts)

    # Old-style transformations run inside the SDK, so the offline engine sees the tags too
    # (the mock monitor does not run engine-side transforms).
    pulumi.runtime.register_stack_transformation(tag)
