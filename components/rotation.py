"""CredentialRotation: the rotation schedule of the application user's secret, enabled only once
that user exists.

The user is created by the schema migration (the primary region's migration Job, in the workload),
which runs after the database and its secret. Enabling rotation earlier fails: an immediate rotation
cannot log in as a user that does not exist and leaves an AWSPENDING version behind that the
service would fall back to, and even `rotate_immediately=False` runs the function's `testSecret`
step against the database (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html).
So the schedule waits for the workload, and its first rotation comes one full period later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.dbcredential import RotationTarget


@dataclass(frozen=True, kw_only=True)
class CredentialRotationArgs:
    target: RotationTarget
    after: Sequence[pulumi.Resource]
    """What creates the user the secret holds (the primary region's workload, whose migration Job does)."""

    def __post_init__(self) -> None:
        if not self.after:
            raise ValueError("give what creates the secret's user: rotation must not start before it exists")


class CredentialRotation(pulumi.ComponentResource):
    rotation_id: pulumi.Output[str]

    def __init__(self, name: str, args: CredentialRotationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:database:CredentialRotation", name, None, opts)
        target = args.target
        rotation = aws.secretsmanager.SecretRotation(
            f"{name}-schedule",
            secret_id=target.secret_id,
            rotation_lambda_arn=target.lambda_arn,
            rotation_rules={"automatically_after_days": target.days},
            rotate_immediately=False,  # the first rotation one period after the user exists, not now
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=target.provider,
                depends_on=[target.initial_version, *args.after],
                # a stack whose `up` created the schedule under the secret keeps it: a replacement would
                # delete the old one last, and that delete (CancelRotateSecret) turns rotation off
                aliases=[target.earlier_urn],
            ),
        )
        self.rotation_id = rotation.id
        self.register_outputs({"rotation_id": self.rotation_id})
