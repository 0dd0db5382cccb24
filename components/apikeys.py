"""TenantApiKeys: one API key per tenant, the same in both regions (the front door may send a tenant
to either), kept secret in state; the service receives only their sha256 digests.

The key format and digest are the service's own (`service.auth`), so what the cluster checks is
what the sandbox checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from service.auth import key_digest

KEY_ENTROPY_CHARS = 32  # alphanumeric: ~190 bits


def api_key(tenant_id: str, secret_part: str) -> str:
    """The key a tenant presents (`mk_<tenant>_<random>`), as `service.auth.new_api_key` makes them."""
    return f"mk_{tenant_id}_{secret_part}"


@dataclass(frozen=True, kw_only=True)
class TenantApiKeysArgs:
    tenant_ids: Sequence[str]


class TenantApiKeys(pulumi.ComponentResource):
    keys: dict[str, pulumi.Output[str]]  # tenant -> key (secret)
    digests: dict[str, pulumi.Output[str]]  # tenant -> sha256 hex of the key (not secret: one-way)

    def __init__(self, name: str, args: TenantApiKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:tenant:TenantApiKeys", name, None, opts)
        self.keys, self.digests = {}, {}
        for tid in args.tenant_ids:
            secret_part = random.RandomPassword(
                f"{name}-{tid}",
                length=KEY_ENTROPY_CHARS,
                special=False,
                # A tenant moved between stacks: `pulumi state move` of its key alone parents it to the
                # destination's stack, and CLIs that fix the URN then (pulumi/pulumi#21816) drop this
                # component's type from it; the alias finds it there, so the key is not a new one.
                opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]),
            )
            key = pulumi.Output.secret(secret_part.result.apply(lambda s, t=tid: api_key(t, s)))
            self.keys[tid] = key
            # A digest of a ~190-bit random key reveals nothing usable; unwrap it so it can be compared.
            self.digests[tid] = pulumi.Output.unsecret(key.apply(key_digest))
        self.register_outputs({"digests": self.digests})
