"""The house's floors, read from the source with `ast`: imports point down and never run in a circle.

Every module of the project's packages is parsed; an import anywhere in it counts (module level,
inside a function, under `if TYPE_CHECKING:`), since each is a dependency of that module. The rules:
- no import cycle among project modules;
- `components/` never imports `meridian`;
- `policies/` imports nothing from the project (the pack is handed alone to `pulumi preview`; its
  modules import each other by bare name, `from ruleutil import ...`);
- only `meridian/targets/` and `meridian/sandbox/` itself import `meridian.sandbox`: everything above
  the targets floor asks a Target;
- nothing in `meridian/` probes a target with `getattr`/`hasattr`/`callable(getattr(...))`: optional
  abilities are protocols (`meridian/targets/protocol.py`);
- every part sits on a floor of `docs/design.md` and imports only parts on lower floors.

Each rule has a unit test on a tiny fake module set that seeds the violation and expects it found.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("meridian", "components", "policies", "service", "stackconfig")
FLAT_PACKAGES = ("policies",)  # run with their own directory as the root: siblings import by bare name

# Broken by house/cli (issue 25, step 5): prepare, writable, policy_line, print_violations and
# load_base move out of commands/preview/ into a module below the commands.


# --- reading the tree ------------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_sources(root: Path = ROOT) -> dict[str, str]:
    """Module name -> source of every module of the project's packages that exist here."""
    out = {}
    for package in PACKAGES:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            out[module_name(path, root)] = path.read_text()
    return out


def _is_package(name: str, modules: dict[str, str]) -> bool:
    return any(m.startswith(name + ".") for m in modules)


def _resolve(name: str, importer: str, modules: dict[str, str]) -> str | None:
    """The project module an absolute import name means, or None for a library."""
    if name in modules:
        return name
    flat = importer.split(".", 1)[0]
    if flat in FLAT_PACKAGES and f"{flat}.{name}" in modules:
        return f"{flat}.{name}"
    return None


def imports_of(importer: str, source: str, modules: dict[str, str]) -> set[str]:
    """The project modules `importer` imports, wherever in the module the import statement is."""
    found: set[str] = set()
    package = importer if _is_package(importer, modules) else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, importer, modules)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}", importer, modules) or _resolve(base, importer, modules)
                if target:
                    found.add(target)
    found.discard(importer)
    return found


def import_graph(modules: dict[str, str]) -> dict[str, set[str]]:
    return {name: imports_of(name, source, modules) for name, source in modules.items()}


# --- the rules -------------------------------------------------------------------------------------


def import_cycles(graph: dict[str, set[str]]) -> dict[frozenset[str], list[str]]:
    """Each group of modules that import each other in a circle (strongly connected) -> one cycle
    through it, as a path back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graph is a few hundred modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return {frozenset(group): _cycle_in(group, graph) for group in sorted(groups, key=min)}


def _cycle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")  # pragma: no cover - Tarjan found one


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def forbidden(graph: dict[str, set[str]], importers: str, imported: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """`a -> b` for every module under `importers` (but not under `allowed`) that imports one under `imported`."""
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        if _under(a, importers) and not any(_under(a, p) for p in allowed)
        for b in targets
        if any(_under(b, p) for p in imported)
    )


def floor_violations(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    outside_pack = tuple(p for p in PACKAGES if p != "policies")
    return {
        "components never import meridian": forbidden(graph, "components", ("meridian",)),
        "policies import nothing from the project": forbidden(graph, "policies", outside_pack),
        "only targets/ and sandbox/ import meridian.sandbox": forbidden(
            graph, "meridian", ("meridian.sandbox",), allowed=("meridian.targets", "meridian.sandbox")
        ),
    }


def _names_target(node: ast.expr) -> bool:
    """`target`, `run.target`, `self.target`: an expression that holds a Target."""
    return (isinstance(node, ast.Name) and node.id == "target") or (isinstance(node, ast.Attribute) and node.attr == "target")


def target_probes(module: str, source: str) -> list[str]:
    """`module:line: code` of every getattr/hasattr on a target and every callable(getattr(...))."""
    out, inside = [], set()
    for node in ast.walk(ast.parse(source)):  # breadth first: a callable() is seen before its getattr()
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args) or id(node) in inside:
            continue
        first = node.args[0]
        wrapped = isinstance(first, ast.Call) and isinstance(first.func, ast.Name) and first.func.id == "getattr"
        if node.func.id == "callable" and wrapped:
            inside.add(id(first))
        elif not (node.func.id in ("getattr", "hasattr") and _names_target(first)):
            continue
        out.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    return out


# --- the project as it is --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return project_sources()


@pytest.fixture(scope="module")
def graph(sources) -> dict[str, set[str]]:
    return import_graph(sources)


def test_the_graph_reads_the_whole_project(sources, graph):
    assert {"meridian.cli", "meridian.targets", "meridian.targets.sandbox", "components.network", "policies.ruleutil"} <= set(
        sources
    )
    assert "meridian.sandbox.core" in graph["meridian.targets.sandbox"]  # `from meridian.sandbox import core`
    assert "policies.ruleutil" in graph["policies.encryption"]  # the pack's bare-name sibling import


def _report(cycles: dict[frozenset[str], list[str]]) -> str:
    return "\n".join(f"{' -> '.join(path)} (the circle: {', '.join(sorted(group))})" for group, path in cycles.items())


def test_no_import_cycle(graph):
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + _report(cycles)


@pytest.mark.parametrize("rule", list(floor_violations({})))
def test_imports_point_down(graph, rule):
    found = floor_violations(graph)[rule]
    assert not found, f"{rule}:\n" + "\n".join(found)


def test_no_target_is_probed_for_methods(sources):
    found = [p for name, src in sorted(sources.items()) if _under(name, "meridian") for p in target_probes(name, src)]
    assert not found, "declare the ability as a protocol in meridian/targets and ask isinstance():\n" + "\n".join(found)


# --- each rule catches a seeded violation -----------------------------------------------------------


def test_a_cycle_through_a_function_level_import_is_found():
    fake = {
        "meridian": "",
        "meridian.a": "import meridian.b\n",
        "meridian.b": "def later():\n    from meridian.c import thing\n",
        "meridian.c": "from meridian import a\nthing = 1\n",
        "meridian.d": "import meridian.a\n",
    }
    assert import_cycles(import_graph(fake)) == {
        frozenset({"meridian.a", "meridian.b", "meridian.c"}): ["meridian.a", "meridian.b", "meridian.c", "meridian.a"]
    }


def test_a_relative_import_counts():
    fake = {"pkg": "", "pkg.x": "from . import y\n", "pkg.y": "from .x import name\n"}
    assert list(import_cycles(import_graph(fake)).values()) == [["pkg.x", "pkg.y", "pkg.x"]]


def test_a_tree_without_a_cycle_has_none():
    fake = {"meridian": "", "meridian.a": "import meridian.b\nimport os\n", "meridian.b": "import json\n"}
    assert import_cycles(import_graph(fake)) == {}


def test_components_importing_meridian_is_found():
    fake = {
        "components": "",
        "components.network": "def f():\n    from meridian.errors import BadInput\n",
        "meridian": "",
        "meridian.errors": "",
    }
    assert floor_violations(import_graph(fake))["components never import meridian"] == ["components.network -> meridian.errors"]


def test_the_pack_importing_the_project_is_found_and_its_own_siblings_are_not():
    fake = {
        "policies": "",
        "policies.ruleutil": "",
        "policies.tags": "from ruleutil import check\nfrom components.tagging import REQUIRED\n",
        "components": "",
        "components.tagging": "",
    }
    graph = import_graph(fake)
    assert graph["policies.tags"] == {"policies.ruleutil", "components.tagging"}
    assert floor_violations(graph)["policies import nothing from the project"] == ["policies.tags -> components.tagging"]


def test_importing_the_sandbox_above_the_targets_floor_is_found():
    fake = {
        "meridian": "",
        "meridian.sandbox": "",
        "meridian.sandbox.ports": "",
        "meridian.sandbox.core": "from meridian.sandbox import ports\n",
        "meridian.targets": "",
        "meridian.targets.sandbox": "from meridian.sandbox import core\n",
        "meridian.slo": "",
        "meridian.slo.run": "from meridian.sandbox.ports import allocate\n",
    }
    rule = "only targets/ and sandbox/ import meridian.sandbox"
    assert floor_violations(import_graph(fake))[rule] == ["meridian.slo.run -> meridian.sandbox.ports"]


def test_probing_a_target_for_methods_is_found():
    source = (
        "def f(target, run):\n"
        "    a = callable(getattr(target, 'start_canary', None))\n"
        "    b = hasattr(target, 'explain')\n"
        "    c = getattr(run.target, 'fault_proxies', True)\n"
        "    d = getattr(settings, 'write_dsn')\n"  # not a target: fine
    )
    assert target_probes("m", source) == [
        "m:2: callable(getattr(target, 'start_canary', None))",
        "m:3: hasattr(target, 'explain')",
        "m:4: getattr(run.target, 'fault_proxies', True)",
    ]


# --- docs/design.md places every part on a floor, and the imports keep to it ----------------------

DESIGN = ROOT / "docs" / "design.md"


def part_of(module: str) -> str:
    """`meridian.drills.probe` -> `meridian.drills`; a top-level package is one part."""
    head, _, rest = module.partition(".")
    return f"{head}.{rest.split('.')[0]}" if head == "meridian" and rest else head


def floors(text: str) -> dict[str, int]:
    table = re.search(r"<!-- floors: .*?-->\n(.*?)<!-- /floors -->", text, re.S)
    assert table, "docs/design.md has no floors table between its markers"
    placed: dict[str, int] = {}
    for floor, parts in re.findall(r"^\|\s*(-?\d+)\s*\|(.*)\|\s*$", table.group(1), re.M):
        for part in re.findall(r"`([\w.]+)`", parts):
            assert part not in placed, f"{part} is on two floors"
            placed[part] = int(floor)
    return placed


def floor_breaches(graph: dict[str, set[str]], placed: dict[str, int]) -> list[str]:
    """Every import between parts that does not go to a lower floor, and every part not placed."""
    found = set()
    for importer, imported in graph.items():
        for module in imported:
            a, b = part_of(importer), part_of(module)
            if a == b:
                continue
            if a not in placed or b not in placed:
                found.update(f"{p} is on no floor of docs/design.md" for p in (a, b) if p not in placed)
            elif placed[b] >= placed[a]:
                found.add(f"{importer} (floor {placed[a]}) -> {module} (floor {placed[b]})")
    return sorted(found)


def test_every_part_is_placed_and_imports_only_go_down(graph):
    breaches = floor_breaches(graph, floors(DESIGN.read_text()))
    assert not breaches, "docs/design.md's floors and the imports disagree:\n" + "\n".join(breaches)


def test_a_sideways_import_and_an_unplaced_part_are_found():
    placed = {"meridian.drills": 5, "meridian.slo": 5, "meridian.errors": 0}
    graph = {
        "meridian.drills.probe": {"meridian.slo.run", "meridian.errors"},
        "meridian.slo.run": {"meridian.errors"},
        "meridian.newpart": set(),
        "meridian.errors": {"meridian.newpart"},
    }
    assert floor_breaches(graph, placed) == [
        "meridian.drills.probe (floor 5) -> meridian.slo.run (floor 5)",
        "meridian.newpart is on no floor of docs/design.md",
    ]
