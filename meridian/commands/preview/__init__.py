"""`meridian preview`: the offline engine's main job, for one stack (`stack`) or a zone (`zone`)."""

from meridian.commands.preview.stack import PreviewRequest, plan_json, preview_markdown, run_preview, write_plan_json
from meridian.commands.preview.zone import ZoneRequest, run_zone_preview, zone_reference_problems
from meridian.commands.preview.zoneworker import StackPreview

__all__ = [
    "PreviewRequest",
    "StackPreview",
    "ZoneRequest",
    "plan_json",
    "preview_markdown",
    "run_preview",
    "run_zone_preview",
    "write_plan_json",
    "zone_reference_problems",
]
