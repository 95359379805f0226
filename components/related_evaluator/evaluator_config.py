"""What the RelatedEvaluator is configured with: its `evaluation_config` execution property, one JSON object
written and read by formats/settings_codec.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.related_evaluator.blend_lib import BlendSettings
from components.related_evaluator.rerank_lib import RerankSettings


@dataclass(frozen=True)
class EvaluatorConfig:
    blend: BlendSettings = field(default_factory=BlendSettings)
    rerank: RerankSettings = field(default_factory=RerankSettings)
    titles_path: str = ""  # optional TSV id<TAB>title, only decorating the report's examples
    # Every setting of the pipeline (dataclasses.asdict of PipelineSettings, plain JSON values) for the
    # report's provenance; None from a pipeline that did not pass them.
    run_settings: dict[str, Any] | None = None
