"""Teardown: what a stack lets `pulumi destroy` delete, and the vault lock that may forbid it forever."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if s.get("production") and has("teardown") and s["teardown"].force_delete:
        out.append(
            (
                "teardown.force_delete",
                "a production stack must not delete its buckets' object versions and its images with the stack: "
                "set false (or remove the key)",
            )
        )
    if has("dr"):
        dr = s["dr"]
        mode = dr.vault_lock_mode or ("compliance" if s.get("production") else "governance")
        if mode == "governance" and "vault_lock_grace_days" in dr.model_fields_set:
            out.append(
                (
                    "dr.vault_lock_grace_days",
                    f"only compliance mode has a grace period, and the vault lock is in {mode} mode "
                    "(set dr.vault_lock_mode: compliance, or remove the key)",
                )
            )
    return out
