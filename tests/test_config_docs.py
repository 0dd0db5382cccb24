"""docs/config.md documents every key the stack config accepts, from the models themselves."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel, Field

from meridian.configdoc import config_reference
from meridian.docs import _replace
from stackconfig import StackConfig

from .helpers import ROOT

CONFIG_DOC = ROOT / "docs" / "config.md"


def model_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key path of `model`, walked here on its own (not by the generator under test):
    `a.b` in a mapping, `a[].b` in each list entry, `a.<name>.b` in each entry of a keyed mapping."""
    keys = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        keys.append(path)
        annotation = field.annotation
        if typing.get_origin(annotation) is tuple:
            inner, path = typing.get_args(annotation)[0], f"{path}[]"
        elif typing.get_origin(annotation) is dict:
            inner, path = typing.get_args(annotation)[1], f"{path}.<name>"
        else:
            inner = next((a for a in typing.get_args(annotation) if isinstance(a, type)), annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            keys += model_keys(inner, path)
    return keys


def undocumented(text: str) -> list[str]:
    return [key for key in model_keys(StackConfig) if f"`{key}`" not in text]


def test_every_model_key_is_in_the_config_doc():
    assert undocumented(CONFIG_DOC.read_text()) == [], "run `meridian docs --write`"


def test_a_key_left_out_of_the_doc_is_found():
    keys = model_keys(StackConfig)
    assert {"rollout.steps", "dr.fis_duration_minutes", "tenants[].quota.gql_qps", "plans.<name>.per_tenant"} <= set(keys)
    text = CONFIG_DOC.read_text().replace("`dr.fis_duration_minutes`", "`dr.fis_minutes`")
    assert undocumented(text) == ["dr.fis_duration_minutes"]


def test_the_generated_reference_is_current():
    text = CONFIG_DOC.read_text()
    assert _replace(text, "config-reference", config_reference(), "docs/config.md") == text, "run `meridian docs --write`"


def test_the_reference_shows_type_default_and_constraints():
    reference = config_reference()
    assert "| `dr.backup_retention_days` | integer | `35` | >= 7; <= 35 |" in reference
    assert "| `failover.failure_threshold` | integer | derived from rto_target_s | >= 1; <= 10 |" in reference
    assert '| `network.nat_gateways` | string | `"per-az"` | `"per-az"`, `"single"` |' in reference
    assert "| `cost.alert_thresholds_pct` | list of integer | `[50, 80, 100]` | each >= 1; each <= 100 |" in reference


def test_a_key_without_description_is_refused():
    class Section(BaseModel):
        documented: int = Field(1, description="has one")
        bare: int = 2

    class Config(BaseModel):
        section: Section = Field(Section(), description="a section")

    with pytest.raises(ValueError, match=r"section\.bare: the field has no description"):
        config_reference(Config)
