"""The pack's shortcuts for speed decide exactly what the long way decides.

Each shortcut rests on an equivalence: a cache key, an index in place of a scan, a pass skipped
where it changes nothing. Each test here tries to break one: inputs that differ only in what a
careless key would leave out, every overlap an index could miss, patterns that need the pass.
The long way is written out in the test (or is the library's own code) and compared with the pack's.
"""

from __future__ import annotations

import itertools
import sys
from contextlib import contextmanager

import pytest

from .helpers import ROOT

PACK = ROOT / "policies"


@contextmanager
def _pack_path():
    sys.path.insert(0, str(PACK))
    try:
        yield
    finally:
        sys.path.remove(str(PACK))


with _pack_path():
    from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

    import k8snet
    from access import simulator
    from access.reach import PROBE, Reach, TagFilter, _literal_prefix
    from access.sessions import Sessions
    from access.world import DataResource, World


# --- principalmapper's matcher without its pass over the context -------------------------------

PATTERNS = [
    "arn:aws:s3:::pool/tenants/t-acme/*",
    "arn:aws:s3:::pool/tenants/${aws:PrincipalTag/kubernetes-namespace}/*",
    "arn:aws:s3:::pool/tenants/${aws:principaltag/KUBERNETES-NAMESPACE}/*",  # variables are case-insensitive
    "arn:aws:s3:::pool/tenants/${aws:PrincipalTag/absent}/*",
    "arn:aws:kms:*:111111111111:key/*",
    "arn:aws:kms:us-east-?:111111111111:key/k1",
    "s3:Get*",
    "S3:GETOBJECT",
    "kms:*",
    "*",
    "arn:aws:s3:::a.b$c^d",
    "${aws:username}",
    "$literal{not-a-variable}",
]
STRINGS = [
    "arn:aws:s3:::pool/tenants/t-acme/x",
    "arn:aws:s3:::pool/tenants/t-globex/x",
    "arn:aws:s3:::pool/tenants/${aws:PrincipalTag/kubernetes-namespace}/x",
    "arn:aws:kms:us-east-1:111111111111:key/k1",
    "arn:aws:kms:us-east-12:111111111111:key/k1",
    "s3:GetObject",
    "kms:Decrypt",
    "arn:aws:s3:::a.b$c^d",
    "arn:aws:s3:::aXb$c^d",
    "alice",
    "$literal{not-a-variable}",
]
CONTEXTS = [
    None,
    {},
    {"aws:PrincipalTag/kubernetes-namespace": "t-acme", "aws:username": "alice"},
    {"aws:PrincipalTag/kubernetes-namespace": "t-globex", "aws:TagKeys": ["a", "b"]},
]


def test_the_matcher_decides_as_principalmapper_does_with_and_without_variables():
    from principalmapper.querying import local_policy_simulation as lps

    assert lps._matches_after_expansion is simulator._matches_after_expansion  # installed in the evaluator
    decided = set()
    simulator._PAIRS.clear()
    for _ in range(2):  # the second time from the cache of (action or principal, pattern) pairs
        for pattern, string, context in itertools.product(PATTERNS, STRINGS, CONTEXTS):
            keys = None if context is None else simulator.CaseInsensitiveDict(context)
            ours = simulator._matches_after_expansion(string, pattern, keys)
            assert ours == simulator._expanding_match(string, pattern, keys), (string, pattern, context)
            decided.add(ours)
    assert decided == {True, False}
    assert simulator._PAIRS  # the cache was used
    # the pass still runs where a pattern has a variable: the tenant's own prefix only
    tags = simulator.CaseInsensitiveDict({"aws:PrincipalTag/kubernetes-namespace": "t-acme"})
    assert simulator._matches_after_expansion(STRINGS[0], PATTERNS[1], tags)
    assert not simulator._matches_after_expansion(STRINGS[1], PATTERNS[1], tags)


# --- ipBlock unions judged once per distinct texts ---------------------------------------------

PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def _blocks(*specs):
    return [{"cidr": cidr, **({"except": list(holes)} if holes else {})} for cidr, holes in specs]


@pytest.mark.parametrize(
    "first, second",
    [
        # the same cidr with and without the private ranges excepted
        (_blocks(("0.0.0.0/0", PRIVATE)), _blocks(("0.0.0.0/0", ()))),
        # the same except on another cidr
        (_blocks(("0.0.0.0/1", ()), ("128.0.0.0/1", ())), _blocks(("0.0.0.0/1", ()), ("128.0.0.0/2", ()))),
        # the holes moved from one block to the other
        (
            _blocks(("0.0.0.0/1", ("10.0.0.0/8",)), ("128.0.0.0/1", ())),
            _blocks(("0.0.0.0/1", ()), ("128.0.0.0/1", ("10.0.0.0/8",))),
        ),
    ],
)
def test_blocks_that_differ_in_any_text_are_judged_apart(first, second):
    """A key that dropped `except`, or which block it belongs to, would hand one the other's verdict."""
    for blocks in (first, second, first):
        assert k8snet.ip_blocks_problem(blocks, PRIVATE) == k8snet._ip_blocks_problem(blocks, PRIVATE)
    assert k8snet.ip_blocks_problem(first, PRIVATE) != k8snet.ip_blocks_problem(second, PRIVATE)


def test_the_private_ranges_are_part_of_the_key():
    blocks = _blocks(("0.0.0.0/1", ()), ("128.0.0.0/1", ()))
    assert "10.0.0.0/8" in k8snet.ip_blocks_problem(blocks, PRIVATE)
    assert "10.0.0.0/8" not in k8snet.ip_blocks_problem(blocks, ("172.16.0.0/12",))


def test_blocks_the_cache_cannot_key_are_judged_as_they_are():
    """An unknown raises the SDK's own error, as before; a value that is not text raises where it raised."""
    unknown = unknown_checking_proxy(
        {"cidr": "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "except": ["10.0.0.0/8"]}
    )  # the engine's unknown sentinel
    with pytest.raises(UnknownValueError):
        k8snet.ip_blocks_problem([unknown], PRIVATE)
    with pytest.raises(ValueError):
        k8snet.ip_blocks_problem([{"cidr": None}], PRIVATE)
    with pytest.raises(ValueError):
        k8snet.ip_blocks_problem(_blocks(("not-a-cidr", ())), PRIVATE)
    assert k8snet.ip_blocks_problem([], PRIVATE) is None


# --- documents narrowed once per world ---------------------------------------------------------


def test_a_document_is_narrowed_apart_for_each_set_of_free_keys():
    """Cached by the document alone, the stack's own principals and outsiders would share one answer:
    a Deny on the organization binds an outsider and is avoidable by no one else."""
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:AssumeRole",
                "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}},
            },
        ]
    }
    sessions = Sessions(_world([]))
    outsider = sessions.narrowed(trust)
    own = sessions.narrowed(trust, simulator.ORGANIZATION_KEYS)
    assert outsider == simulator.for_any_request(trust) and len(outsider["Statement"]) == 2
    assert own == simulator.for_any_request(trust, simulator.ORGANIZATION_KEYS) and len(own["Statement"]) == 1
    assert sessions.narrowed(trust) is outsider  # and computed once
    other = {"Statement": [dict(trust["Statement"][0], Action="s3:GetObject")]}  # an equal-looking other document
    assert sessions.narrowed(other)["Statement"][0]["Action"] == "s3:GetObject"


# --- the resource indexes against a scan of every resource ---------------------------------------

ACCOUNT = "111111111111"
TENANTS = ("a", "ab", "b")


def _world(resources):
    return World(ACCOUNT, {}, [], {}, {}, resources, {}, {}, [], {}, [], "tenants/{tenant}/")


def _resources():
    out = []
    for bucket in ("pool", "pool-archive"):
        arn = f"arn:aws:s3:::{bucket}"
        for t in TENANTS:
            prefix = f"tenants/{t}/"
            out.append(DataResource(t, "object", f"{arn}/{prefix}", f"{bucket} {t} objects", f"urn:{bucket}", "us-east-1"))
            out.append(DataResource(t, "listing", arn, f"{bucket} {t} listing", f"urn:{bucket}", "us-east-1", prefix=prefix))
    for region, t in itertools.product(("us-east-1", "us-west-2"), TENANTS):
        tags = (("meridian:tenant", t), ("tier", "gold" if t == "a" else "silver"))
        key = f"arn:aws:kms:{region}:{ACCOUNT}:key/{t}"
        out.append(DataResource(t, "key", key, f"key {t}", f"urn:key-{t}", region, tags))
        secret = f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{t}"
        out.append(DataResource(t, "secret", secret, f"secret {t}", f"urn:secret-{t}", region, tags[:1]))
    return out


def _scanned(resources, pattern, listing_prefixes, tags):
    """The long way: every resource tested against the pattern, the listing prefixes and the tags."""
    prefix = _literal_prefix(pattern)
    out = set()
    for r in resources:
        named = r.arn == pattern if prefix == pattern else prefix <= r.arn < prefix + "\uffff"
        if not named:
            continue
        if r.kind == "listing" and listing_prefixes is not None:
            if not any(p.startswith(r.prefix) or r.prefix.startswith(p) for p in listing_prefixes):
                continue
        if r.kind in ("key", "secret") and tags is not None:
            if tags.none or not all(pair in r.tags for pair in tags.wanted):
                continue
        out.add((r, PROBE))
    return out


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:s3:::pool",
        "arn:aws:s3:::pool*",
        "arn:aws:s3:::*",
        "arn:aws:s3:::pool/tenants/a/",
        "*",
        f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*",
        f"arn:aws:kms:*:{ACCOUNT}:key/*",
        f"arn:aws:kms:us-west-2:{ACCOUNT}:key/ab",
        "arn:aws:secretsmanager:*",
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:a",
    ],
)
def test_the_indexes_find_what_a_scan_finds(pattern):
    """Listings whose prefix overlaps a statement's `s3:prefix` either way ("tenants/a" is a prefix
    of "tenants/ab/"), keys and secrets by one tag, two tags, a tag nobody carries, none at all."""
    resources = _resources()
    reach = Reach(_world(resources))
    listing_choices = [None, ["tenants/a/"], ["tenants/a"], ["tenants/"], [""], ["tenants/a/reports/"], ["other/", "tenants/b/"]]
    tag_choices = [
        None,
        TagFilter(none=True),
        TagFilter((("meridian:tenant", "a"),)),
        TagFilter((("meridian:tenant", "ab"), ("tier", "silver"))),
        TagFilter((("meridian:tenant", "a"), ("tier", "silver"))),
        TagFilter((("meridian:tenant", "nobody"),)),
    ]
    found_any = False
    for listings, tags in itertools.product(listing_choices, tag_choices):
        indexed = [(r, probe) for r, probe in reach._matching(pattern, listings, tags) if probe == PROBE]
        assert len(indexed) == len(set(indexed)), "each resource once"
        assert set(indexed) == _scanned(resources, pattern, listings, tags), (pattern, listings, tags)
        found_any = found_any or bool(indexed)
    assert found_any


# --- roles found by what their trust names -------------------------------------------------------

OTHER = "222222222222"


def _names(trust: dict, arn: str) -> bool:
    """The long way: every Allow statement of the (narrowed) trust read for `arn`."""
    acct = arn.split(":")[4]
    for st in trust["Statement"]:
        if str(st.get("Effect", "")).lower() != "allow":
            continue
        if st.get("Principal") == "*" or "NotPrincipal" in st:
            return True
        aws = st.get("Principal", {}).get("AWS", []) if isinstance(st.get("Principal"), dict) else []
        if any(p in (arn, acct, f"arn:aws:iam::{acct}:root", "*") for p in (aws if isinstance(aws, list) else [aws])):
            return True
    return False


def _role(name: str, *statements: dict):
    from access.world import Doc, Principal

    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    return Principal(arn, f"role {name}", None, trust=Doc(f"trust of {name}", None, {"Statement": list(statements)}))


def test_the_roles_a_principal_may_assume_are_those_a_scan_of_every_trust_finds():
    """By ARN, account, account root, `*` as a string or in a list, `NotPrincipal`, a Deny that
    names it (not a way in), a service trust, and an organization condition that binds outsiders only."""
    me, stranger = f"arn:aws:iam::{ACCOUNT}:role/me", f"arn:aws:iam::{OTHER}:role/stranger"
    allow = {"Effect": "Allow", "Action": "sts:AssumeRole"}
    roles = [
        _role("by-arn", {**allow, "Principal": {"AWS": me}}),
        _role("by-account", {**allow, "Principal": {"AWS": [OTHER]}}),
        _role("by-root", {**allow, "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", "arn:aws:iam::333333333333:root"]}}),
        _role("anyone", {**allow, "Principal": "*"}),
        _role("anyone-aws", {**allow, "Principal": {"AWS": ["*"]}}),
        _role("not-principal", {**allow, "NotPrincipal": {"AWS": me}}),
        _role("deny-only", {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"AWS": me}}),
        _role("service", {**allow, "Principal": {"Service": "ec2.amazonaws.com"}}),
        _role(
            "org-only",
            {**allow, "Principal": {"AWS": stranger}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}},
        ),
        _role("no-trust"),
    ]
    roles[-1].trust = None
    world = _world([])
    world.principals = {r.arn: r for r in roles}
    sessions = Sessions(world)
    seen = set()
    for arn in (me, stranger, f"arn:aws:iam::{ACCOUNT}:user/someone", "arn:aws:iam::444444444444:role/x"):
        for free in (frozenset(), simulator.ORGANIZATION_KEYS):
            found = [r.label for r in sessions._trusting(arn, free)]
            scanned = [r.label for r in roles if r.trust and _names(sessions.narrowed(r.trust.document, free), arn)]
            assert found == scanned, (arn, free)
            seen.add(tuple(found))
    assert len(seen) > 3  # the cases do tell the principals apart


# --- regexes compiled once per pattern, variables bound only where there are some ----------------

LIKE = ["t-acme", "t-*", "t-ac?e", "a.b", "a$b^c", "(x)", "[ab]*", "x+y", "*", "", "ê", "ß"]
VALUES = [
    "t-acme",
    "t-globex",
    "t-acxe",
    "a.b",
    "aXb",
    "a$b^c",
    "x",
    "(x)",
    "a",
    "ab",
    "xy",
    "xxy",
    "x+y",
    "",
    "ê",
    "ss",
    "T-ACME",
]


def test_like_conditions_match_as_principalmapper_matches_them():
    """The long way: principalmapper 1.1.5's `_expand_str_and_compare`, a regex built and looked up per call."""
    import re

    from principalmapper.querying import local_policy_simulation as lps

    def long_way(pattern, value):
        escaped = pattern.replace(".", "\\.").replace("*", ".*").replace("?", ".").replace("$", "\\$").replace("^", "\\^")
        return re.match(f"^{escaped}$", value, flags=re.UNICODE) is not None

    assert lps._expand_str_and_compare is simulator._expand_str_and_compare  # installed in the evaluator
    decided = {(p, v): long_way(p, v) for p, v in itertools.product(LIKE, VALUES)}
    assert set(decided.values()) == {True, False}
    for (pattern, value), expected in decided.items():
        assert simulator._expand_str_and_compare(pattern, value) == expected, (pattern, value)
    context = simulator.CaseInsensitiveDict({"aws:PrincipalTag/tenant": "t-acme"})
    assert simulator._get_condition_match({"StringLike": {"aws:PrincipalTag/tenant": "t-*"}}, context)
    assert not simulator._get_condition_match({"StringLike": {"aws:PrincipalTag/tenant": "t-g*"}}, context)


def _bound_the_long_way(doc, values):
    """`bind` as written before it skipped blocks without a variable: every block rebuilt."""
    lowered = {k.lower(): v for k, v in values.items() if isinstance(v, str)}

    def fill(value):
        if isinstance(value, str) and "${" in value:
            return simulator._VARIABLE.sub(lambda m: lowered.get(m.group(1).lower(), m.group(0)), value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    out = []
    for st in simulator._statements(doc):
        cond = st.get("Condition")
        if isinstance(cond, dict):
            st = {
                **st,
                "Condition": {op: {k: fill(v) for k, v in b.items()} if isinstance(b, dict) else b for op, b in cond.items()},
            }
        out.append(st)
    return {**doc, "Statement": out}


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:ResourceTag/tenant": "t-acme"}},  # no variable
        {"StringEquals": {"aws:ResourceTag/tenant": "${aws:PrincipalTag/tenant}"}},
        {"StringLike": {"s3:prefix": ["reports/*", "${aws:PrincipalTag/tenant}/*"]}},  # in a list
        {"StringLike": {"s3:prefix": [["${aws:PrincipalTag/tenant}"]]}},  # in a list in a list
        {"StringEquals": {"aws:ResourceTag/tenant": "${aws:PrincipalTag/absent}"}},  # no value: kept as written
        {"Bool": "not-a-block"},
        {},
    ],
)
def test_bind_fills_in_what_the_long_way_fills_in(condition):
    values = {"aws:PrincipalTag/tenant": "t-acme", "aws:TagKeys": ["a"]}
    for doc in (
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": condition}]},
        {"Statement": {"Effect": "Deny", "Action": "*", "Condition": condition}},  # one statement, not a list
    ):
        assert simulator.bind(doc, values) == _bound_the_long_way(doc, values)
    if "${aws:PrincipalTag/tenant}" in str(condition):
        assert "t-acme" in str(simulator.bind(doc, values))


# --- a Struct decoded without the generic JSON printer -----------------------------------------

STRUCT_VALUES = [
    {"s": "text", "ê": "unicode key", "empty": ""},
    {"int": 1, "big": 2**53, "neg": -0.0, "frac": 0.1, "tiny": 5e-324, "huge": 1.7976931348623157e308},
    {"bool": True, "false": False, "none": None},
    {"list": [1, "a", None, True, [], {}, [[{"deep": [1.5]}]]], "struct": {"nested": {"more": {}}}},
    {},
]


@pytest.mark.parametrize("value", STRUCT_VALUES)
def test_a_struct_decodes_as_the_printer_decodes_it(value):
    """Same values and same types (1.0 stays a float, as the printer returns it), same key order."""
    from google.protobuf import json_format, struct_pb2

    with _pack_path():
        import sdkhooks

    struct = struct_pb2.Struct()
    struct.update(value)
    expected = json_format.MessageToDict(struct)
    ours = sdkhooks._message_to_dict(struct)
    assert ours == expected and repr(ours) == repr(expected)
    # anything but a Struct, or with the printer's options, goes to the printer
    assert sdkhooks._message_to_dict(struct, preserving_proto_field_name=True) == expected
    as_value = struct_pb2.Value(struct_value=struct)
    assert sdkhooks._message_to_dict(as_value) == json_format.MessageToDict(as_value)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_struct_the_printer_refuses_is_refused(number):
    from google.protobuf import json_format, struct_pb2

    with _pack_path():
        import sdkhooks

    struct = struct_pb2.Struct()
    struct.update({"ok": 1, "bad": [number]})
    with pytest.raises(ValueError) as printer:
        json_format.MessageToDict(struct)
    with pytest.raises(ValueError) as ours:
        sdkhooks._message_to_dict(struct)
    assert str(ours.value) == str(printer.value)
