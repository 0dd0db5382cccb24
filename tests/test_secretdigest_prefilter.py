"""Inputs skipped by the secret digests' byte test (secretdigest._may_hold_secrets) hold no secret:
the digests are those of decoding every registration."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from meridian.engine import secretdigest
from meridian.engine.recorder import OUTPUT_SIG, SECRET_SIG, SIG_KEY, UNKNOWN, Registration

CASES = {
    "plain": {"name": "b", "tags": {"a": "b"}, "list": [1, "x", {"y": None}]},
    "secret at the top": {"password": {SIG_KEY: SECRET_SIG, "value": "hunter2"}},
    "secret deep in a list": {"containers": [{"env": [{"value": {SIG_KEY: SECRET_SIG, "value": "k"}}]}]},
    "secret output": {"token": {SIG_KEY: OUTPUT_SIG, "secret": True, "value": "t"}},
    "unknown secret output": {"token": {SIG_KEY: OUTPUT_SIG, "secret": True}},
    "plain output holding a secret": {"o": {SIG_KEY: OUTPUT_SIG, "value": {"p": {SIG_KEY: SECRET_SIG, "value": "s"}}}},
    "plain output": {"o": {SIG_KEY: OUTPUT_SIG, "value": "v"}},
    "unknown": {"arn": UNKNOWN},
    "a signature as a key": {SECRET_SIG: "not a marker"},
}


def _reg(name: str, inputs: dict) -> Registration:
    struct = struct_pb2.Struct()
    struct.update(inputs)
    return Registration(f"urn:{name}", "t", name, True, "", "", [], {}, struct.SerializeToString())


def _long_way(regs: list[Registration], key: bytes) -> dict:
    saved = secretdigest._may_hold_secrets
    secretdigest._may_hold_secrets = lambda wire: True
    try:
        return secretdigest.secret_digests(regs, key)
    finally:
        secretdigest._may_hold_secrets = saved


@pytest.mark.parametrize("name", CASES)
def test_the_byte_test_skips_only_inputs_without_secrets(name):
    regs = [_reg(name, CASES[name])]
    assert secretdigest.secret_digests(regs, b"k" * 32) == _long_way(regs, b"k" * 32)


def test_every_secret_is_still_found():
    regs = [_reg(n, v) for n, v in CASES.items()]
    found = secretdigest.secret_digests(regs, b"k" * 32)
    assert set(found) == {
        "urn:secret at the top",
        "urn:secret deep in a list",
        "urn:secret output",
        "urn:unknown secret output",
        "urn:plain output holding a secret",
    }
    assert not secretdigest._may_hold_secrets(_reg("plain", CASES["plain"]).wire)
