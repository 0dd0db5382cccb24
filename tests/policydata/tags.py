"""The required-tags rule: mutations only."""

from __future__ import annotations

from .base import DELETE, DR, Mutations, set_input

MUTATIONS: Mutations = {
    "aws-resource-required-tags": [
        ("a log group without its cost-center tag", set_input("flowlogs", "tags.meridian:cost-center", DELETE)),
        ("a key with an empty stack tag", set_input("platform-key", "tags.meridian:stack", "")),
        (
            "the dr provider's default tags without the region tag (its key sets no tags of its own)",
            set_input(DR, "defaultTags.tags.meridian:region", DELETE),
        ),
    ],
}
