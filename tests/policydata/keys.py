"""KMS keys: the platform's, the dr region's and one per tenant."""

from __future__ import annotations

import json

from .base import DR, PRIMARY, Builder, Mutations, arn, set_input, stack_tags, urn

KEY = "aws:kms/key:Key"
PLATFORM_KEY, DR_KEY = urn(KEY, "platform-key"), urn(KEY, "dr-key")
ACME_KEY, GLOBEX_KEY = urn(KEY, "acme-key"), urn(KEY, "globex-key")
KEY_ARN = arn("kms", PRIMARY, "key/1111-platform")
DR_KEY_ARN = arn("kms", DR, "key/2222-dr")
ACME_KEY_ARN = arn("kms", PRIMARY, "key/3333-acme")


def build(b: Builder) -> None:
    b.add(KEY, "platform-key", {"enableKeyRotation": True, "deletionWindowInDays": 30})
    b.add(KEY, "dr-key", {"enableKeyRotation": True}, region=DR, provider=b.providers[DR], tags=False)
    b.add(KEY, "acme-key", {"enableKeyRotation": True}, tags=stack_tags(PRIMARY, **{"meridian:tenant": "acme"}))
    b.add(KEY, "globex-key", {"enableKeyRotation": True}, tags=stack_tags(PRIMARY, **{"meridian:tenant": "globex"}))


MUTATIONS: Mutations = {
    "kms-key-rotation-and-policy": [
        ("a key without rotation", set_input("platform-key", "enableKeyRotation", False)),
        (
            "a key policy open to every AWS account",
            set_input(
                "platform-key",
                "policy",
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}),
            ),
        ),
    ],
}
