"""ImageRegistry: the service's ECR repository in each region of the pair, replicated inside the zone.

CI pushes to the primary region's repository; ECR registry replication copies every image of it to
the dr region's repository of the same name, so each region's nodes pull from their own region
(no cross-region pull on the failover path, no image leaving the residency zone). Tags are
immutable (a tag names one build forever), images are scanned on push and encrypted with KMS.

Replication is a registry-level setting of the source region: one `ReplicationConfiguration` per
account and region. Stacks that share an account must not use the same primary region (see
docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.keys import customer_key


@dataclass(frozen=True, kw_only=True)
class RegionRegistry:
    region: str
    provider: aws.Provider


@dataclass(frozen=True, kw_only=True)
class ImageRegistryArgs:
    repository: str
    """Repository name, e.g. `meridian/service` (the same in both regions: replication keeps names)."""
    primary: RegionRegistry
    dr: RegionRegistry
    force_delete: bool = False
    """`pulumi destroy` deletes the repositories with every image (outside production only); False:
    the delete fails while a repository holds images."""

    def __post_init__(self) -> None:
        if self.primary.region == self.dr.region:
            raise ValueError("the replica repository must live in another region than the primary")


class ImageRegistry(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]  # region -> `<account>.dkr.ecr.<region>.amazonaws.com/<name>`

    def __init__(self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:registry:ImageRegistry", name, None, opts)
        self.repository_urls = {}
        repositories = []
        for side in (args.primary, args.dr):
            key = customer_key(
                f"{name}-{side.region}-key", f"{name} images in {side.region}", parent=self, provider=side.provider
            )
            repo = aws.ecr.Repository(
                f"{name}-{side.region}",
                name=args.repository,  # replication writes to the same name in the destination
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": key.arn}],
                force_delete=args.force_delete,
                opts=pulumi.ResourceOptions(parent=self, provider=side.provider),
            )
            repositories.append(repo)
            self.repository_urls[side.region] = repo.repository_url
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=args.primary.provider)
        ).account_id
        aws.ecr.ReplicationConfiguration(
            f"{name}-replication",
            replication_configuration={
                "rules": [
                    {
                        "destinations": [{"region": args.dr.region, "registry_id": account_id}],
                        "repository_filters": [{"filter": args.repository, "filter_type": "PREFIX_MATCH"}],
                    }
                ]
            },
            # The destination repository exists first, with our settings, rather than ECR's defaults.
            opts=pulumi.ResourceOptions(parent=self, provider=args.primary.provider, depends_on=repositories),
        )
        self.register_outputs({"repository_urls": self.repository_urls})
