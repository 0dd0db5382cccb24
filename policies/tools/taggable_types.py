"""Regenerate policies/aws_taggable.json: the pulumi-aws resource types whose arguments take `tags`.

    .venv/bin/python policies/tools/taggable_types.py > policies/aws_taggable.json

Reads the installed pulumi_aws sources (no import: importing all of pulumi_aws takes minutes);
tests/test_policy_pack.py checks the committed file matches the installed pulumi-aws.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_TOKEN = re.compile(r'@pulumi\.type_token\("(aws:[^"]+)"\)\s*\nclass (\w+)\(pulumi\.CustomResource\)')


def taggable_types(package_dir: Path) -> list[str]:
    out = set()
    for source in sorted(package_dir.rglob("*.py")):
        text = source.read_text()
        for match in _TOKEN.finditer(text):
            body = text[match.end() :]
            following = _TOKEN.search(body)
            body = body[: following.start()] if following else body
            start = body.find("def _internal_init")
            init = body[start : body.find("def get(", start)] if start >= 0 else ""
            if '__props__.__dict__["tags"] = tags' in init:
                out.add(match.group(1))
    return sorted(out)


def main() -> None:
    import pulumi_aws  # only to locate it

    package = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(pulumi_aws.__file__).parent
    json.dump(taggable_types(package), sys.stdout, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
