"""Record the two plans tests/test_plandiff.py diffs: the us stack before and after a change that
opens the shared tenant bucket to public reads (and adds a node per region for the download traffic).

    .venv/bin/python tests/data/plandiff/record.py

Both plans come from the real engine and the real policy pack, run on a scratch copy of the
project (the copy's own `components/` are imported: the copy is the working directory).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PROJECT = (
    "Pulumi.yaml",
    "Pulumi.us.yaml",
    "Pulumi.eu.yaml",
    "Pulumi.apac.yaml",
    "__main__.py",
    "components",
    "stackconfig",
    "policies",
)

# The change under review, as edits to the copy: (file, old text, new text).
PUBLIC_DOWNLOADS = [
    (
        "components/bucket.py",
        "    tags: dict[str, str] | None = None\n",
        '    tags: dict[str, str] | None = None\n    public_read: bool = False\n    """Anyone may GET objects (public downloads)."""\n',
    ),
    (
        "components/bucket.py",
        "block_public_acls=True, block_public_policy=True,\n            ignore_public_acls=True, restrict_public_buckets=True,",
        "block_public_acls=True, block_public_policy=not args.public_read,\n            ignore_public_acls=True, restrict_public_buckets=not args.public_read,",
    ),
    (
        "components/bucket.py",
        "policy=self.bucket.arn.apply(tls_only_policy)",
        "policy=self.bucket.arn.apply(public_read_policy if args.public_read else tls_only_policy)",
    ),
    (
        "components/bucket.py",
        "\n\n@dataclass(frozen=True, kw_only=True)",
        "\n\ndef public_read_policy(bucket_arn: str) -> str:\n"
        "    document = json.loads(tls_only_policy(bucket_arn))\n"
        '    document["Statement"].append({"Sid": "PublicDownloads", "Effect": "Allow", "Principal": "*",\n'
        '                                  "Action": "s3:GetObject", "Resource": f"{bucket_arn}/*"})\n'
        "    return json.dumps(document)\n\n\n@dataclass(frozen=True, kw_only=True)",
    ),
    (
        "components/tenantpool.py",
        "SecureBucketArgs(kms_key_arn=key.arn)",
        "SecureBucketArgs(kms_key_arn=key.arn, public_read=True)",
    ),
    (
        "Pulumi.us.yaml",
        "  meridian:zone: us\n",
        '  meridian:zone: us\n  meridian:cluster:\n    version: "1.33"\n    node_instance_types: [m7g.large]\n'
        "    node_ami_type: AL2023_ARM_64_STANDARD\n    node_min: 3\n    node_desired: 4\n    node_max: 9\n    public_access_cidrs: []\n",
    ),
]


def copy_project(dest: Path) -> None:
    for name in PROJECT:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)


def apply(dest: Path, edits: list[tuple[str, str, str]]) -> None:
    for name, old, new in edits:
        path = dest / name
        text = path.read_text()
        if text.count(old) != 1:
            sys.exit(f"{name}: the text to replace is not there exactly once (the project moved on; update the edit): {old!r}")
        path.write_text(text.replace(old, new))


def preview(project: Path, out: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meridian", "preview", "--stack", "us", "--json", str(out)],
        cwd=project,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1) or not out.exists():  # 1: a gate failed, which the change is meant to do
        sys.exit(f"preview in {project} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout[-3000:]}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label, edits in (("base", []), ("head-public-bucket", PUBLIC_DOWNLOADS)):
            project = Path(tmp) / label
            project.mkdir()
            copy_project(project)
            apply(project, edits)
            plan = Path(tmp) / f"{label}.json"
            preview(project, plan)
            with gzip.GzipFile(HERE / f"us-{label}.json.gz", "wb", mtime=0) as f:
                f.write(plan.read_bytes())
            print(f"recorded {HERE / f'us-{label}.json.gz'}")


if __name__ == "__main__":
    main()
