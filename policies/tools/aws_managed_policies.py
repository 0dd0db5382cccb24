"""Regenerate policies/access/aws_managed.json: the documents of the AWS-managed policies the access
rules read, copied from a git clone of zoph-io/IAMTrail (formerly z0ph/MAMIP), which archives the
default version of every AWS-managed policy as `aws iam get-policy-version` returns it.

    git clone https://github.com/zoph-io/IAMTrail /tmp/IAMTrail
    .venv/bin/python policies/tools/aws_managed_policies.py /tmp/IAMTrail [ARN ...] > policies/access/aws_managed.json

Keeps every ARN the file already ships and adds the ARNs given; each document is recorded with the
archive's commit and the policy's version id under `_sources`. Refuses an ARN the archive does not
list (a mistyped path such as `service-role/`), and a version that is not the default.
tests/test_policy_explain.py fails when the program attaches an AWS-managed policy not shipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "access" / "aws_managed.json"
ARCHIVE = "https://github.com/zoph-io/IAMTrail"


def _show(clone: str, commit: str, path: str) -> str:
    return subprocess.run(["git", "-C", clone, "show", f"{commit}:{path}"], capture_output=True, text=True, check=True).stdout


def regenerate(clone: str, wanted: list[str]) -> dict:
    commit = subprocess.run(["git", "-C", clone, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    listed = {p["Arn"]: p for p in json.loads(_show(clone, commit, "policies-list.json"))["Policies"]}
    current = json.loads(TARGET.read_text()) if TARGET.exists() else {}
    arns = sorted({a for a in current if not a.startswith("_")} | set(wanted))
    sources, documents = {}, {}
    for arn in arns:
        if arn not in listed:
            raise SystemExit(f"{arn}: not an AWS-managed policy the archive lists (check its path)")
        name = arn.rsplit("/", 1)[1]
        version = json.loads(_show(clone, commit, f"policies/{name}"))["PolicyVersion"]
        if not version.get("IsDefaultVersion") or version["VersionId"] != listed[arn]["DefaultVersionId"]:
            raise SystemExit(f"{arn}: the archive's policies/{name} is not the default version")
        documents[arn] = version["Document"]
        sources[arn] = {
            "versionId": version["VersionId"],
            "versionCreated": version["CreateDate"],
            "source": f"{ARCHIVE}/blob/{commit}/policies/{name}",
        }
    return {
        "_about": "AWS-managed policy documents the access rules read: the default version of each, as "
        "`aws iam get-policy-version` returns it, copied from the IAMTrail archive (commit and version id per "
        "policy under `_sources`) by policies/tools/aws_managed_policies.py. A managed policy not listed here is "
        "evaluated as granting every action on every resource: named in the finding, and printed by "
        "`meridian policy --explain` as assumed, never as proven reach.",
        "_sources": sources,
        **documents,
    }


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(json.dumps(regenerate(sys.argv[1], sys.argv[2:]), indent=1))
