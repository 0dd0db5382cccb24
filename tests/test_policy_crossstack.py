"""Security review 18, cross-stack: a platform and its cells each judged on their own plan, replayed
through the analyzer. The platform's plan does not create its cells' tenant namespaces, yet they are
tenants' (any name with the tenant prefix the plan names but
does not create: policies/tenantns.py), so a platform role, Secret, binding or open NetworkPolicy
there is refused (K53-K56). A cell puts in its platform's service namespace only its own tenant file,
by exact name, type Opaque, no token or takeover annotation (C44, C52). Each attack is caught with
either half of the platform's fix alone (the cell list with no prefix; the prefix with no list), and
the legitimate twins pass the whole pack."""

from __future__ import annotations

import copy
import json

import pytest

from .helpers import ROOT
from .policydata.base import UNKNOWN
from .test_policy_review16 import (  # noqa: F401 (cell_judge: the cell's plan, a module fixture)
    CELL,
    cell_judge,
    one,
    rbac,
)

pytestmark = pytest.mark.slow  # the plans come from the previews fixture and the cell's program

DATA, GUARDED = "tenant-data-access", "tenant-namespace-guarded"
SECRETS, RBAC = "k8s-tenant-secret-own-data-only", "k8s-rbac-binding-scoped"
NAMESPACE_RULES = (
    DATA,
    "tenant-role-isolated",
    GUARDED,
    RBAC,
    SECRETS,
    "k8s-target-group-binding-platform-only",
)
WONKA = "t-wonka"  # a tenant namespace of the cell us-cell-001, which the us plan does not create
TENANT_FILE = "us-cell-001-us-east-1-tenant-file"


def k8s(kind: str, group: str, name: str, namespace: str, body: dict) -> dict:
    """A Kubernetes object of the us stack, on its us-east-1 cluster."""
    r = rbac(kind, name, body)
    r["type"] = f"kubernetes:{group}:{kind}"
    r["urn"] = f"urn:pulumi:us::meridian::{r['type']}::{name}"
    r["inputs"]["metadata"] = {"name": name, "namespace": namespace}
    return r


def broker_into(namespace: str):
    """K56: the broker role (it assumes the tenant role for any tenant) associated into `namespace`."""

    def mutate(resources):
        like = copy.deepcopy(one(resources, "us-us-east-1-tenant-identity-broker-identity", "podIdentityAssociation"))
        like["name"], like["urn"] = "wonka-broker", like["urn"] + "-wonka"
        like["inputs"].update(namespace=namespace, serviceAccount="wonka-app")
        resources.append(like)

    return mutate


def settings_copied_into(namespace: str):
    """K55: a Secret in `namespace` built from the platform API's settings (DB credential, every tenant's API key)."""

    def mutate(resources):
        source = one(resources, "us-us-east-1-api-settings", "core/v1:Secret")
        leak = k8s("Secret", "core/v1", "leak", namespace, {"type": "Opaque", "stringData": {"service.json": "[secret]"}})
        leak["propertyDependencies"] = {"stringData": [source["urn"]]}
        leak["dependencies"] = [source["urn"]]
        resources.append(leak)

    return mutate


def view_everywhere_for(namespace: str):
    """K54: the built-in `view` bound cluster-wide to a service account of `namespace`."""
    return lambda resources: resources.append(
        rbac(
            "ClusterRoleBinding",
            "wonka-view-all",
            {
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "ServiceAccount", "name": "wonka-app", "namespace": namespace}],
            },
        )
    )


def network_policy(namespace: str, ingress: list, name: str = "open-wonka"):
    spec = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress}
    return lambda resources: resources.append(k8s("NetworkPolicy", "networking.k8s.io/v1", name, namespace, {"spec": spec}))


def open_to_every_namespace(namespace: str):
    """K53: a NetworkPolicy in `namespace` admitting ingress from every namespace."""
    return network_policy(namespace, [{"from": [{"namespaceSelector": {}}]}])


PLATFORM_ATTACKS = [
    ("K56 the broker role associated into a cell tenant's namespace", broker_into, DATA),
    ("K55 the platform API's settings copied into a cell tenant's namespace", settings_copied_into, SECRETS),
    ("K54 view bound cluster-wide to a cell tenant's service account", view_everywhere_for, RBAC),
    ("K53 a NetworkPolicy opening a cell tenant's namespace to every namespace", open_to_every_namespace, GUARDED),
]
# The shipped config (the tenant prefix decides), and each way a namespace is known as a tenant's alone: (a) a hand-set list
# of cells' tenant namespaces, with a prefix no namespace has; (b) the tenant prefix, with no list.
HALVES = {
    "shipped config": (WONKA, {}),
    "cell list only": (
        WONKA,
        {rule: {"tenantNamespacePrefix": "zz-", "cellTenantNamespaces": {WONKA: "wonka"}} for rule in NAMESPACE_RULES},
    ),
    "prefix only": ("t-newcell-tenant", {rule: {"cellTenantNamespaces": {}} for rule in NAMESPACE_RULES}),
}


def mandatory(found, rule):
    return [v.message for v in found if v.policy == rule and v.level == "mandatory"]


@pytest.mark.parametrize("half", HALVES)
@pytest.mark.parametrize("what,attack,rule", PLATFORM_ATTACKS, ids=[a[0][:3] for a in PLATFORM_ATTACKS])
def test_a_platform_resource_in_a_cell_tenants_namespace_is_refused(judge, what, attack, rule, half):
    namespace, settings = HALVES[half]
    hits = mandatory(judge(attack(namespace), settings=settings), rule)
    assert hits and all(" must " in m for m in hits), (what, half)
    assert any(namespace in m or namespace.removeprefix("t-") in m for m in hits), hits


def test_the_broker_in_a_cell_tenants_namespace_is_that_tenant_holding_the_platforms_role(judge):
    """The evaluator's path: wonka's pods get the broker, so the database credential (every tenant's rows);
    its tenant sessions keep the transitive `kubernetes-namespace=t-wonka` tag, which the role's brokered
    statements (they require `platform`) refuse: no other tenant's objects through it."""
    hits = mandatory(judge(broker_into(WONKA)), DATA)
    assert any("tenant wonka's workloads reach it" in m and "platform's secret" in m for m in hits), hits
    assert any("Tenant wonka's pods must not get role us-us-east-1-tenant-identity-broker" in m for m in hits), hits
    assert not any("Tenant acme's data" in m for m in hits), hits


def test_no_shipped_config_lists_cells_tenant_namespaces():
    """The prefix decides for the shipped stacks: a platform's file never names its cells' tenants, so
    onboarding one into a cell never makes the platform's file stale."""
    for stack in ("us", "eu", "apac"):
        config = json.loads((ROOT / "policies" / "config" / f"{stack}.json").read_text())
        assert all("cellTenantNamespaces" not in config.get(rule, {}) for rule in NAMESPACE_RULES), stack


PLATFORM_TWINS = [
    (
        "a platform Role and RoleBinding in `platform` for the API's own service account",
        lambda resources: resources.extend(
            [
                k8s(
                    "Role",
                    "rbac.authorization.k8s.io/v1",
                    "api-logs",
                    "platform",
                    {"rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]},
                ),
                k8s(
                    "RoleBinding",
                    "rbac.authorization.k8s.io/v1",
                    "api-logs",
                    "platform",
                    {
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "api-logs"},
                        "subjects": [{"kind": "ServiceAccount", "name": "meridian-api", "namespace": "platform"}],
                    },
                ),
            ]
        ),
    ),
    (
        "a NetworkPolicy in a cell tenant's namespace admitting only the platform namespace on 8080",
        network_policy(
            WONKA,
            [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}}}],
                    "ports": [{"port": 8080, "protocol": "TCP"}],
                }
            ],
            name="from-platform",
        ),
    ),
    (
        "the platform API's egress to a cell tenant's service on 8080 (a NetworkPolicy in `platform`)",
        lambda resources: resources.append(
            k8s(
                "NetworkPolicy",
                "networking.k8s.io/v1",
                "to-wonka",
                "platform",
                {
                    "spec": {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [
                            {
                                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": WONKA}}}],
                                "ports": [{"port": 8080, "protocol": "TCP"}],
                            }
                        ],
                    }
                },
            )
        ),
    ),
]


@pytest.mark.parametrize("what,mutation", PLATFORM_TWINS, ids=[t[0][:40] for t in PLATFORM_TWINS])
def test_the_platforms_legitimate_cross_namespace_resources_pass(judge, what, mutation):
    assert [(v.policy, v.message) for v in judge(mutation) if v.level == "mandatory"] == [], what


@pytest.mark.parametrize("stack", ["us", "eu", "apac"])
def test_the_shipped_platform_plans_have_no_mandatory_finding(judge, stack):
    assert [(v.policy, v.message) for v in judge(stack=stack) if v.level == "mandatory"] == []


# --- the cell's side: only its own tenant file in the platform's service namespace ---------------------


def tenant_file_edit(edit):
    def mutate(resources):
        for r in resources:
            if r["name"].endswith("-tenant-file"):
                edit(r["inputs"])

    return mutate


def named(name: str):
    return tenant_file_edit(lambda inputs: inputs["metadata"].__setitem__("name", name))


def annotated(key: str, value: str):
    return tenant_file_edit(lambda inputs: inputs["metadata"].setdefault("annotations", {}).__setitem__(key, value))


def token_for_the_api(resources):
    """C52: a service-account-token Secret for the platform API's service account, in `platform`."""
    like = copy.deepcopy(one(resources, TENANT_FILE))
    like["name"], like["urn"] = "api-token", like["urn"].rsplit("::", 1)[0] + "::api-token"
    like["inputs"] = {
        "metadata": {
            "name": "api-token",
            "namespace": "platform",
            "annotations": {"kubernetes.io/service-account.name": "meridian-api"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    like["propertyDependencies"] = {}
    resources.append(like)


def config_map_in_platform(resources):
    like = copy.deepcopy(one(resources, TENANT_FILE))
    like["type"], like["name"] = "kubernetes:core/v1:ConfigMap", "flags"
    like["urn"] = like["urn"].rsplit("::", 2)[0] + "::kubernetes:core/v1:ConfigMap::flags"
    like["inputs"] = {"metadata": {"name": "flags", "namespace": "platform"}, "data": {"x": "y"}}
    resources.append(like)


CELL_ATTACKS = [
    (
        "C44 the tenant file renamed to the platform API's settings Secret",
        named("us-us-east-1-api-settings-25cd01c"),
        "its name is",
    ),
    ("C52 a service-account token for the platform API in `platform`", token_for_the_api, "kubernetes.io/service-account-token"),
    ("the tenant file with a forced takeover", annotated("pulumi.com/patchForce", "true"), "pulumi.com/patchForce"),
    (
        "the tenant file as a token",
        tenant_file_edit(lambda i: i.__setitem__("type", "kubernetes.io/service-account-token")),
        "its type",
    ),
    ("the tenant file named by Pulumi", tenant_file_edit(lambda i: i["metadata"].pop("name")), "no `metadata.name`"),
    ("a ConfigMap in `platform`", config_map_in_platform, "not a Secret"),
]


@pytest.mark.parametrize("what,mutation,why", CELL_ATTACKS, ids=[a[0][:40] for a in CELL_ATTACKS])
def test_a_cell_puts_only_its_own_tenant_file_in_the_platforms_service_namespace(cell_judge, what, mutation, why):  # noqa: F811
    hits = [m for m in mandatory(cell_judge(mutation), DATA) if "the service namespace of its platform" in m]
    assert hits and all(" must " in m and "meridian-tenants-us-cell-001" in m for m in hits), what
    assert any(why in m for m in hits), hits


def test_an_unknown_tenant_file_name_is_an_advisory(cell_judge):  # noqa: F811
    found = cell_judge(named(UNKNOWN))
    said = [v for v in found if v.policy == DATA and "is it the cell's tenant file" in v.message]
    assert said and all(v.level == "advisory" for v in said), [(v.level, v.message) for v in found if v.policy == DATA]


CELL_TWINS = [
    ("the cell's real tenant files", lambda resources: None),
    (
        "L78 a NetworkPolicy in t-wonka admitting the platform namespace on 8080",
        lambda resources: resources.append(
            {
                **copy.deepcopy(one(resources, TENANT_FILE)),
                "type": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                "name": "from-platform",
                "urn": f"urn:pulumi:{CELL}::meridian::kubernetes:networking.k8s.io/v1:NetworkPolicy::from-platform",
                "inputs": {
                    "metadata": {"name": "from-platform", "namespace": WONKA},
                    "spec": {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [
                            {
                                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}}}],
                                "ports": [{"port": 8080, "protocol": "TCP"}],
                            }
                        ],
                    },
                },
                "propertyDependencies": {},
                "dependencies": [],
            }
        ),
    ),
    ("the tenant file with an annotation of its own", annotated("meridian.io/owner", "cells-team")),
]


@pytest.mark.parametrize("what,mutation", CELL_TWINS, ids=[t[0][:40] for t in CELL_TWINS])
def test_a_cell_in_its_lane_passes(cell_judge, what, mutation):  # noqa: F811
    assert [(v.policy, v.message) for v in cell_judge(mutation) if v.level == "mandatory"] == [], what
