"""The `image` preflight check: the service image holds what the service's code imports, and runs on
the nodes' CPU architecture.

Packages: what `service/Dockerfile` installs (the `service` extra of pyproject.toml, read the way
the Dockerfile reads it, or literal names) against the third-party imports of every module
`python -m service` reaches (an AST walk from `service/__main__.py`, imports inside functions
included): a module the image lacks crashes the migration Job and every pod at start.

Architecture: each EKS node group's AMI type (and instance types) against the image's platforms,
read from the build manifest `make image` writes (`build/image/<tag>.json`) or, online, from the
image's manifest in ECR. Offline without a manifest the platforms are unknown: said as a note.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import sys
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from meridian.preflight.context import CheckResult, Context, Finding

SERVICE = "service"
EXTRA = "service"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
MANIFEST_DIR = Path("build") / "image"
# pip's own tools are no packages of the service
INSTALLER_TOOLS = {"pip", "setuptools", "wheel"}
# pip options that take a value (the value is no requirement)
PIP_VALUE_OPTIONS = {
    "-c",
    "--constraint",
    "-r",
    "--requirement",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--platform",
    "--python-version",
    "--only-binary",
    "--no-binary",
}
EXTRA_READ = re.compile(r"""\[["']optional-dependencies["']\]\[["'](?P<extra>[\w.-]+)["']\]""")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- what the service imports --------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    module: str  # the top-level module, e.g. "boto3"
    where: str  # "service/dbsecret.py:31"
    optional: bool  # inside `try: ... except ImportError`: the code runs without it


def _guarded(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {k.id for k in kinds if isinstance(k, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of(tree: ast.AST, package: str) -> Iterable[tuple[str, int, bool]]:
    """(absolute module, line, optional) of every import that runs, at any depth of the module."""

    def walk(node: ast.AST, optional: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                yield from (x for stmt in child.orelse for x in walk_one(stmt, optional))
                continue
            if isinstance(child, ast.Try) and _guarded(child):
                for stmt in child.body:
                    yield from walk_one(stmt, True)
                for part in (*child.handlers, *child.orelse, *child.finalbody):
                    yield from walk_one(part, optional)
                continue
            yield from walk_one(child, optional)

    def walk_one(node: ast.AST, optional: bool):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, optional
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base != "__future__":
                yield base, node.lineno, optional
                for alias in node.names:  # `from service import logs` may name a submodule
                    yield f"{base}.{alias.name}", node.lineno, optional
        yield from walk(node, optional)

    yield from walk(tree, False)


def service_imports(source: Path, entry: str = "__main__") -> list[Import]:
    """The third-party imports of every module `python -m service` runs, following the service's own
    imports from `entry` (its package `__init__` runs first)."""
    root = source.parent
    seen: set[Path] = set()
    todo = [source / "__init__.py", source / f"{entry}.py"]
    found: list[Import] = []
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        rel = path.relative_to(root)
        package = ".".join(rel.parent.parts)
        for module, line, optional in _imports_of(ast.parse(path.read_text(), str(path)), package):
            top = module.split(".")[0]
            if top == SERVICE:
                sub = root.joinpath(*module.split("."))
                todo += [sub.with_suffix(".py"), sub / "__init__.py"]
            elif top not in sys.stdlib_module_names:
                found.append(Import(top, f"{rel.as_posix()}:{line}", optional))
    return sorted(set(found), key=lambda i: (i.module, i.where.split(":")[0], int(i.where.split(":")[1])))


def distribution_of(module: str, installed: dict[str, list[str]]) -> str:
    """The distribution that provides a top-level module: the installed one, else the module's own
    name (a module whose distribution is named otherwise and is not installed here then shows as
    missing from the extra: a finding, never a pass)."""
    dists = installed.get(module)
    return normalize(dists[0]) if dists else normalize(module)


# --- what the image installs ---------------------------------------------------------------------------


def extra_requirements(pyproject: str, extra: str) -> dict[str, str]:
    """normalized name -> requirement, of one extra of pyproject.toml, for a Linux image (markers
    that exclude Linux drop the requirement)."""
    from packaging.requirements import Requirement

    extras = tomllib.loads(pyproject).get("project", {}).get("optional-dependencies", {})
    if extra not in extras:
        raise KeyError(f"pyproject.toml has no [project.optional-dependencies] {extra!r} (extras: {sorted(extras)})")
    out = {}
    for line in extras[extra]:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}):
            out[normalize(req.name)] = line
    return out


@dataclass
class DockerInstall:
    packages: dict[str, str]  # normalized name -> where it comes from ("service extra", "Dockerfile")
    problems: list[str]


def run_commands(dockerfile: str) -> list[str]:
    """The shell commands of every RUN instruction (continuations joined, split at && and ;)."""
    text = re.sub(r"\\\n", " ", dockerfile)
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*RUN\s+(.*)", line, re.IGNORECASE)
        if m:
            out += [c.strip() for c in re.split(r"&&|;", m.group(1)) if c.strip()]
    return out


def dockerfile_installs(dockerfile: str, pyproject: str) -> DockerInstall:
    """What the Dockerfile's `pip install` commands put in the image."""
    commands = run_commands(dockerfile)
    result = DockerInstall({}, [])
    for command in commands:
        if not re.search(r"\bpip\s+install\b", command):
            continue
        tokens = shlex.split(command)
        args = tokens[tokens.index("install") + 1 :]
        constrained = False
        i = 0
        while i < len(args):
            arg = args[i]
            opt, _, inline = arg.partition("=")
            if opt in PIP_VALUE_OPTIONS:
                value = inline or (args[i + 1] if i + 1 < len(args) else "")
                i += 1 if inline else 2
                if opt in ("-c", "--constraint"):
                    constrained = True
                elif opt in ("-r", "--requirement"):
                    _from_requirements_file(value, commands, pyproject, result)
                continue
            i += 1
            if arg.startswith("-"):
                continue
            name = normalize(re.split(r"[\[<>=!~;@ ]", arg, maxsplit=1)[0])
            if name not in INSTALLER_TOOLS:
                result.packages[name] = "named in the Dockerfile"
        if not constrained:
            result.problems.append(f"`{command}` installs without `-c constraints.txt`: versions the tests never ran")
    return result


def _from_requirements_file(path: str, commands: list[str], pyproject: str, result: DockerInstall) -> None:
    writer = next((c for c in commands if re.search(rf">\s*{re.escape(path)}\s*$", c)), None)
    m = EXTRA_READ.search(writer or "")
    if m is None:
        result.problems.append(f"installs -r {path}, which the Dockerfile does not write from a pyproject.toml extra")
        return
    try:
        reqs = extra_requirements(pyproject, m["extra"])
    except KeyError as exc:
        result.problems.append(str(exc.args[0]))
        return
    result.packages.update({name: f"the {m['extra']} extra" for name in reqs})


def package_findings(source: Path, dockerfile: str, pyproject: str, installed: dict[str, list[str]]) -> tuple[list[str], int]:
    """Problems of the image's packages against the code (and how many imports were judged)."""
    problems = []
    imports = service_imports(source)
    needed: dict[str, list[Import]] = {}
    for imp in imports:
        needed.setdefault(distribution_of(imp.module, installed), []).append(imp)
    try:
        extra = extra_requirements(pyproject, EXTRA)
    except KeyError as exc:
        problems.append(str(exc.args[0]))
        extra = {}
    image = dockerfile_installs(dockerfile, pyproject)
    problems += image.problems
    for dist, uses in sorted(needed.items()):
        required = [u for u in uses if not u.optional]
        where = ", ".join(u.where for u in (required or uses)[:3])
        if required and dist not in image.packages:
            problems.append(f"the image lacks {dist}, which the service imports at {where}: it fails at start")
        if extra and dist not in extra:
            problems.append(f"pyproject.toml's `{EXTRA}` extra misses {dist}, which the service imports at {where}")
    for dist in sorted(set(extra) - set(needed)):
        problems.append(f"pyproject.toml's `{EXTRA}` extra lists {dist}, which no module of the service imports")
    for dist in sorted(set(image.packages) - set(extra)) if extra else ():
        problems.append(f"the image installs {dist} ({image.packages[dist]}), which is not in the `{EXTRA}` extra")
    return problems, len(imports)


# --- architectures -------------------------------------------------------------------------------------


GRAVITON = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)\.")  # m7g, c7gn, r8g, t4g, x2gd, im4gn, is4gen


def ami_architecture(ami_type: str) -> str | None:
    """linux/arm64 or linux/amd64 for an EKS AMI type; None for one whose architecture is not in its
    name (CUSTOM: the launch template's AMI decides)."""
    if "ARM_64" in ami_type:
        return "linux/arm64"
    if "x86_64" in ami_type or ami_type.startswith("WINDOWS_"):
        return "linux/amd64"
    return None


def instance_architecture(instance_type: str) -> str:
    return "linux/arm64" if GRAVITON.match(instance_type) else "linux/amd64"


class ImagePlatforms(Protocol):
    """Where the image's platforms can be read: `None` when they cannot be known from there."""

    def platforms(self, image: str) -> tuple[set[str] | None, str]: ...


@dataclass(frozen=True)
class BuildManifests:
    """The manifests `make image` writes: build/image/<tag>.json, {"image", "platforms"}."""

    project_dir: Path

    def platforms(self, image: str) -> tuple[set[str] | None, str]:
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        path = self.project_dir / MANIFEST_DIR / f"{tag}.json"
        if not tag or not path.is_file():
            return None, f"no build manifest {MANIFEST_DIR / (tag + '.json')} (`make image` writes it)"
        doc = json.loads(path.read_text())
        if not _same_image(str(doc.get("image")), image):
            return None, f"{path.name} describes {doc.get('image')!r}, not {image}"
        platforms = doc.get("platforms", "")
        return {p.strip() for p in (platforms.split(",") if isinstance(platforms, str) else platforms) if p.strip()}, path.name


ECR_REF = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+):(?P<tag>[^@]+)$")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")


@dataclass(frozen=True)
class EcrPlatforms:
    """The platforms of a pushed image, from ECR (`meridian preflight --online`): an image index
    lists them; a single manifest's config blob names its one architecture."""

    session: object  # a boto3 Session with ecr:BatchGetImage and ecr:GetDownloadUrlForLayer
    authoritative = True  # the registry answers for what the nodes will pull: no answer is a finding
    fetch: Callable[[str], bytes] | None = None  # the config blob's presigned URL -> its bytes (default: urllib)

    def platforms(self, image: str) -> tuple[set[str] | None, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        m = ECR_REF.match(image)
        if m is None:
            return None, "not an ECR image with a tag"
        ecr = self.session.client("ecr", region_name=m["region"])
        ids = {"registryId": m["account"], "repositoryName": m["repo"]}
        try:
            got = ecr.batch_get_image(
                **ids, imageIds=[{"imageTag": m["tag"]}], acceptedMediaTypes=[*INDEX_TYPES, *MANIFEST_TYPES]
            )
            if not got.get("images"):
                reasons = "; ".join(f.get("failureReason", "") for f in got.get("failures", []))
                return None, f"ECR has no {m['repo']}:{m['tag']} in {m['region']} ({reasons or 'not found'})"
            found = got["images"][0]
            manifest = json.loads(found["imageManifest"])
            media = found.get("imageManifestMediaType") or manifest.get("mediaType", "")
            if media in INDEX_TYPES:
                return {
                    f"{p['os']}/{p['architecture']}"
                    for p in (entry.get("platform") or {} for entry in manifest.get("manifests", []))
                    if p.get("os") and p.get("architecture") not in (None, "unknown")  # attestations: unknown/unknown
                }, f"ECR image index in {m['region']}"
            url = ecr.get_download_url_for_layer(**ids, layerDigest=manifest["config"]["digest"])["downloadUrl"]
        except (BotoCoreError, ClientError) as exc:
            return None, f"ECR in {m['region']}: {exc}"
        config = json.loads((self.fetch or _download)(url))
        return {f"{config['os']}/{config['architecture']}"}, f"ECR single-platform manifest in {m['region']}"


def _download(url: str) -> bytes:
    from urllib.request import urlopen

    with urlopen(url, timeout=30) as response:  # a presigned S3 URL that ECR handed out
        return response.read()


def _same_image(built: str, pulled: str) -> bool:
    """The pushed image, or its copy in another region's registry of the account (ECR replication
    copies the manifest unchanged): same account, repository and tag."""
    (b_host, _, b_name), (p_host, _, p_name) = built.partition("/"), pulled.partition("/")
    return b_name == p_name and b_host.split(".")[0] == p_host.split(".")[0]


def architecture_findings(ctx: Context, images: dict[str, str], source: ImagePlatforms) -> tuple[list[Finding], list[str], int]:
    """Node groups against the images the plan's containers run (image -> a container's owner URN)."""
    findings, notes = [], []
    needs: dict[str, list[str]] = {}  # platform -> node group URNs
    groups = ctx.of_type(NODE_GROUP)
    for ng in groups:
        inputs = ctx.inputs[ng.urn]
        ami = str(inputs.get("amiType") or "AL2_x86_64")  # EKS's default when none is given
        arch = ami_architecture(ami)
        if arch is None:
            findings.append(
                Finding(
                    ng.urn,
                    f"AMI type {ami}: its CPU architecture is not known offline",
                    "use an AL2023_* or BOTTLEROCKET_* AMI type",
                )
            )
            continue
        needs.setdefault(arch, []).append(ng.urn)
        for itype in inputs.get("instanceTypes") or []:
            if instance_architecture(str(itype)) != arch:
                findings.append(
                    Finding(
                        ng.urn,
                        f"instance type {itype} is {instance_architecture(str(itype))}, AMI type {ami} is {arch}: nodes never join",
                        "set meridian:cluster.node_ami_type to the instance types' architecture",
                    )
                )
    for image, owner in sorted(images.items()):
        platforms, why = source.platforms(image)
        if platforms is None and getattr(source, "authoritative", False):
            # asked of the registry itself: an image it cannot show is one the pods cannot pull
            findings.append(
                Finding(owner, f"{image}: {why}", "push it with `make image` (replication copies it to the dr region)")
            )
            continue
        if platforms is None:
            notes.append(
                f"the platforms of {image} are unknown ({why}); the nodes run {', '.join(sorted(needs)) or 'nothing'}: "
                "build with `make image` (linux/arm64 and linux/amd64) or check with `meridian preflight --online`"
            )
            continue
        for arch, urns in sorted(needs.items()):
            if arch not in platforms:
                findings.append(
                    Finding(
                        owner,
                        f"{image} is built for {', '.join(sorted(platforms))}; the node group {urns[0].rsplit('::', 1)[-1]} runs "
                        f"{arch}: its pods fail with `exec format error`",
                        "build with `make image` (docker buildx --platform linux/arm64,linux/amd64)",
                    )
                )
    return findings, notes, len(groups)


# --- the check -----------------------------------------------------------------------------------------


def service_source() -> Path:
    """The service package the program imported (the one the image copies)."""
    spec = importlib.util.find_spec(SERVICE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the service package is not importable")
    return Path(spec.origin).parent


def check_image(ctx: Context, platforms: ImagePlatforms | None = None) -> CheckResult:
    """`platforms`: where the image's platforms are read (default: the build manifests; online: ECR)."""
    result = CheckResult(
        "image",
        "the image holds every package the service imports (a missing module crashes the pod at start: "
        "https://docs.python.org/3/library/exceptions.html#ModuleNotFoundError) and runs on each node group's CPU "
        "architecture (EKS amiType, https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html; an image "
        "index's platforms, https://github.com/opencontainers/image-spec/blob/main/image-index.md)",
    )
    source = service_source()
    project = source.parent
    dockerfile, pyproject = source / "Dockerfile", project / "pyproject.toml"
    if not dockerfile.is_file() or not pyproject.is_file():
        result.findings.append(
            Finding("", f"cannot judge the image: {dockerfile} or {pyproject} is missing", "run preflight in a checkout")
        )
    else:
        from importlib.metadata import packages_distributions

        problems, result.checked = package_findings(
            source, dockerfile.read_text(), pyproject.read_text(), packages_distributions()
        )
        result.findings += [
            Finding("", p, f"list it in pyproject.toml's `{EXTRA}` extra; service/Dockerfile installs that extra")
            for p in problems
        ]
    images = {}
    for c in ctx.containers():
        images.setdefault(str(c.spec.get("image", "")), c.owner_urn)
    findings, notes, groups = architecture_findings(ctx, images, platforms or BuildManifests(project))
    result.findings += findings
    result.notes += notes
    result.checked += groups
    return result
