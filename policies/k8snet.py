"""NetworkPolicy peers by what they match, not by how they are written: a namespace selector that
any other namespace can satisfy is "every namespace", and the ipBlocks of one rule are judged as
the union of addresses they admit.

A namespaceSelector is bounded only when it names namespaces by `kubernetes.io/metadata.name`
(`matchLabels`, or `In` with values): the API server sets that label to the namespace's own name,
so only that namespace carries it. Any other label may be shared (every enterprise tenant carries
`meridian.io/plan: enterprise`) or put on another namespace later, so a selector on it alone
reaches namespaces nobody named; `Exists`, `DoesNotExist` and `NotIn` are satisfied by namespaces
nobody listed (`kubernetes.io/metadata.name Exists` matches every namespace), and so is an empty
selector. A name or tenant label naming another tenant's namespace opens the tenant to it.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from ruleutil import UNKNOWN, UnknownValueError, as_list, dig, known, unknown

NAME_LABEL = "kubernetes.io/metadata.name"
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def namespace_selector_problem(
    selector: Any,
    tenant_label: str,
    own: set[str],
    tenants: frozenset[str] = frozenset(),
    unsure: frozenset[str] = frozenset(),
    tenant_prefix: str = "t-",
) -> str | None:
    """Why a namespaceSelector reaches other namespaces than the ones it names, or None.
    `own` holds the tenant's own namespace name and tenant id (what it may name); `tenants` the
    names of the stack's tenant namespaces (besides any name with the tenant prefix), `unsure`
    those of its namespaces whose tenant label is unknown at preview."""
    selector = known(selector)
    if selector is UNKNOWN:
        raise unknown("namespaceSelector")
    if not isinstance(selector, dict):
        return None
    labels = selector.get("matchLabels") or {}
    expressions = as_list(selector.get("matchExpressions"))
    if not labels and not expressions:
        return "selects every namespace (an empty `namespaceSelector`)"
    pinned: list[tuple[str, list[str]]] = [(str(k), [_text(v, k)]) for k, v in labels.items()]
    for e in expressions:
        operator, key = _text(dig(e, "operator", default=""), "operator"), _text(dig(e, "key", default=""), "key")
        if operator != "In":
            # every requirement must hold: one open-ended requirement leaves the others to bound it
            continue
        pinned.append((key, [_text(v, key) for v in as_list(dig(e, "values"))]))
    if not pinned:
        ops = ", ".join(f"{dig(e, 'key')} {dig(e, 'operator')}" for e in expressions)
        return f"selects namespaces nobody named (`matchExpressions` {ops} only: satisfied by every namespace that carries or lacks the label)"
    for key, values in pinned:
        foreign = [
            v
            for v in values
            if (key == NAME_LABEL and (v.startswith(tenant_prefix) or v in tenants) or key == tenant_label) and v not in own
        ]
        if foreign:
            return f"selects another tenant's namespace ({key} = {', '.join(foreign)})"
        for v in values:
            if key == NAME_LABEL and v in unsure and v not in own:
                raise unknown(f"namespace {v}'s metadata", "labels", tenant_label)
    if not any(key == NAME_LABEL for key, _ in pinned):
        shared = ", ".join(f"{k} = {', '.join(v)}" for k, v in pinned)
        return (
            f"selects namespaces by {shared}, a label other namespaces (other tenants') may carry: "
            f"name the namespace by `{NAME_LABEL}` (the tenant's own, or a platform namespace)"
        )
    return None


def _text(value: Any, where: Any) -> str:
    """A selector's key, operator or value; one unknown at preview leaves the whole selector unknown."""
    if value is UNKNOWN:
        raise unknown("namespaceSelector", str(where))
    return str(value)


def _nets(cidr: Any) -> Net:
    if cidr is UNKNOWN:
        raise unknown("ipBlock", "cidr")
    return ipaddress.ip_network(str(cidr), strict=False)


def admitted(blocks: list[Any]) -> list[Net]:
    """The union of addresses a rule's ipBlocks admit (each `cidr` minus its `except`), collapsed."""
    out: list[Net] = []
    for block in blocks:
        nets = [_nets(dig(block, "cidr"))]
        for hole in as_list(dig(block, "except")):
            hole = _nets(hole)
            nets = [
                piece
                for n in nets
                for piece in (n.address_exclude(hole) if hole.version == n.version and hole.subnet_of(n) else [n])
            ]
        out += nets
    v4 = list(ipaddress.collapse_addresses([n for n in out if n.version == 4]))
    v6 = list(ipaddress.collapse_addresses([n for n in out if n.version == 6]))
    return v4 + v6


def _covered(target: Net, union: list[Net]) -> bool:
    remaining = [target]
    for net in union:
        if net.version != target.version:
            continue
        nxt = []
        for r in remaining:
            if r.subnet_of(net):
                continue
            nxt += list(r.address_exclude(net)) if net.subnet_of(r) else [r]
        remaining = nxt
        if not remaining:
            return True
    return not remaining


def ip_blocks_problem(blocks: list[Any], private: tuple[str, ...]) -> str | None:
    """Why a rule's ipBlocks together admit the internet and a whole private range pods use
    (0.0.0.0/1 + 128.0.0.0/1 is 0.0.0.0/0), or None.

    Every tenant's namespace carries the same few rules, and the address arithmetic was most of
    its rule's time: blocks whose `cidr` and `except` are all known text are judged once per
    distinct (cidr, except) list (the answer depends on nothing else); any other block (an
    unknown, a non-text value) is judged as it is, raising where it raised."""
    try:
        texts = tuple((dig(b, "cidr"), tuple(as_list(dig(b, "except")))) for b in blocks)
    except UnknownValueError:
        return _ip_blocks_problem(blocks, private)
    if not all(isinstance(cidr, str) and all(isinstance(h, str) for h in holes) for cidr, holes in texts):
        return _ip_blocks_problem(blocks, private)
    return _ip_blocks_problem_of_texts(texts, private)


@functools.lru_cache(maxsize=4096)
def _ip_blocks_problem_of_texts(texts: tuple[tuple[str, tuple[str, ...]], ...], private: tuple[str, ...]) -> str | None:
    return _ip_blocks_problem([{"cidr": cidr, "except": list(holes)} for cidr, holes in texts], private)


def _ip_blocks_problem(blocks: list[Any], private: tuple[str, ...]) -> str | None:
    if not blocks:
        return None
    union = admitted(blocks)
    for world in ("0.0.0.0/0", "::/0"):
        world_net = ipaddress.ip_network(world)
        public = [world_net]
        for p in private:
            p_net = ipaddress.ip_network(p)
            if p_net.version == world_net.version:
                public = [piece for n in public for piece in (n.address_exclude(p_net) if p_net.subnet_of(n) else [n])]
        if not all(_covered(n, union) for n in public):
            continue
        # a private range wholly admitted with the internet is the disguised 0.0.0.0/0; one subnet of
        # it (the VPC's interface endpoints) next to the internet is a deliberate, narrower choice
        reached = [
            p
            for p in private
            if ipaddress.ip_network(p).version == world_net.version and _covered(ipaddress.ip_network(p), union)
        ]
        if reached or world == "::/0":
            blocks_text = ", ".join(str(dig(b, "cidr")) for b in blocks)
            return f"its ipBlocks ({blocks_text}) together admit {world}" + (
                f" including the private ranges {', '.join(reached)} pods use" if reached else ""
            )
    return None
