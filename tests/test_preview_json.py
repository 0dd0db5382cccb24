"""The plan JSON written from resources encoded ahead (while the analyzer finishes) is byte for byte
what the indenting encoder writes for the whole document (commands.preview.plan_json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from meridian.commands.preview.stack import EncodedResources, plan_json, write_plan_json


def _resource(i: int) -> dict:
    return {
        "urn": f"urn:pulumi:us::meridian::aws:s3/bucket:Bucket::b{i}",
        "type": "aws:s3/bucket:Bucket",
        "custom": True,
        "parent": None,
        "region": "us-east-1",
        "inputs": {
            "policy": '{"Statement": [{"Effect": "Allow"}],\n "x": "line\\nbreak"}',  # a text with newlines in it
            "tags": {"meridian:tenant": "t-acme", "ünïcode": "värde \u2603"},
            "empty": {},
            "none": [],
            "nested": [[1, 2.5, -0.0, 1e300], [{"a": [{}]}], True, False, None],
            "path": Path("/not/json"),  # default=str
        },
        "dependencies": [],
        "propertyDependencies": {"policy": ["urn:a", "urn:b"]},
        "protect": False,
    }


def _document(resources: list[dict]) -> dict:
    return {
        "project": "meridian",
        "stack": "us",
        "resources": resources,
        "outputs": {"endpoints": {"us-east-1": "https://a"}, "n": 3, "nan": math.nan},
        "secrets": [],
        "policy": {"evaluated": True, "violations": [{"policy": "p", "message": "m\u00e9"}], "counts": {}},
        "cost": {"monthly_total_usd": 1234.5, "lines": [{"name": "x", "usd": 0.1}]},
    }


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_plan_written_from_encoded_resources_is_the_encoder_s_bytes(count, tmp_path):
    resources = [_resource(i) for i in range(count)]
    document = _document(resources)
    expected = json.dumps(document, indent=1, default=str) + "\n"
    encoded = EncodedResources.of(resources)
    assert plan_json(document, encoded) == expected
    write_plan_json(document, tmp_path / "plan.json", encoded)
    assert (tmp_path / "plan.json").read_text() == expected


def test_resources_encoded_from_another_list_are_not_used(tmp_path):
    """A document whose resources are not the encoded list (a copy, changed after) is encoded whole."""
    resources = [_resource(0)]
    encoded = EncodedResources.of(resources)
    changed = [dict(resources[0], name="changed after encoding")]
    document = _document(changed)
    assert plan_json(document, encoded) == json.dumps(document, indent=1, default=str) + "\n"
    assert "changed after encoding" in plan_json(document, encoded)


def test_without_encoded_resources_the_plan_is_the_encoder_s_bytes(tmp_path):
    document = _document([_resource(0), _resource(1)])
    write_plan_json(document, tmp_path / "plan.json")
    assert (tmp_path / "plan.json").read_text() == plan_json(document) == json.dumps(document, indent=1, default=str) + "\n"
