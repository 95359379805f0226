"""RelatedEvaluator: one offline protocol for every candidate source, the blend, and the run report.

Inputs: `examples` (held-out eval/test queries from SessionExampleGen, the rerank queries the blend is fitted
on, and the train pairs the reranker counts from), `index` (the ScaNN index, i.e. what
users get from Pin2Vec), `candidates` (co-occurrence table) and optionally `model_run` (the Trainer's history,
for the loss curve). Outputs: `evaluation` (evaluation.json, report.html, report.md; custom properties carry
the headline figures and the best source) and `blend` (the blended candidate table: RRF or the learned
reranker, both fitted on the rerank split, whichever is better on validation).
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.code_version import CODE_VERSION_KEY, code_version
from components.cooccurrence.component import RelatedCandidates
from components.related_evaluator import executor
from components.related_evaluator.blend_lib import BlendSettings
from components.related_evaluator.evaluator_config import EvaluatorConfig
from components.related_evaluator.rerank_lib import RerankSettings
from components.scann_indexer.component import ScannIndex
from formats.settings_codec import encode_settings


class RelatedEvaluation(artifact.Artifact):
    """evaluation.json (every source's metrics on validation and test) and the run report."""

    TYPE_NAME = "pin2vec.RelatedEvaluation"


class RelatedEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.CONFIG_KEY: ExecutionParameter(type=str),
        executor.SERVING_DIR_KEY: ExecutionParameter(type=str, optional=True),
        CODE_VERSION_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.INDEX_KEY: ChannelParameter(type=ScannIndex),
        executor.NEXT_INDEX_KEY: ChannelParameter(type=ScannIndex, optional=True),
        executor.CANDIDATES_KEY: ChannelParameter(type=RelatedCandidates),
        executor.BOARD_KEY: ChannelParameter(type=RelatedCandidates, optional=True),
        executor.COLDSTART_KEY: ChannelParameter(type=RelatedCandidates, optional=True),
        executor.MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun, optional=True),
    }
    OUTPUTS = {
        executor.EVALUATION_KEY: ChannelParameter(type=RelatedEvaluation),
        executor.BLEND_KEY: ChannelParameter(type=RelatedCandidates),
    }


class RelatedEvaluator(base_component.BaseComponent):
    """Measures Pin2Vec, co-occurrence and their blend on the same held-out queries."""

    SPEC_CLASS = RelatedEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        index: types.BaseChannel,
        candidates: types.BaseChannel,
        next_index: types.BaseChannel | None = None,
        board: types.BaseChannel | None = None,
        coldstart: types.BaseChannel | None = None,
        model_run: types.BaseChannel | None = None,
        settings: BlendSettings | None = None,
        titles_path: str = "",
        rerank_settings: RerankSettings | None = None,
        run_settings: dict | None = None,
        serving_base_dir: str | None = None,
    ):
        """`titles_path` (optional TSV id<TAB>title) only decorates the report's examples. `run_settings`
        (every setting of the pipeline, as plain JSON values) is shown in the report's provenance block; being
        part of the step's configuration, a changed setting rewrites the report, which never names stale ones.
        `serving_base_dir` (the pusher's) holds the version being served, which `stability` compares the
        candidate with."""
        config = EvaluatorConfig(
            blend=settings or BlendSettings(),
            rerank=rerank_settings or RerankSettings(),
            titles_path=titles_path,
            run_settings=run_settings,
        )
        super().__init__(
            spec=RelatedEvaluatorSpec(
                examples=examples,
                index=index,
                next_index=next_index,
                candidates=candidates,
                board=board,
                coldstart=coldstart,
                model_run=model_run,
                evaluation_config=encode_settings(config),
                serving_base_dir=serving_base_dir,
                code_version=code_version(executor.__name__),
                evaluation=types.Channel(type=RelatedEvaluation),
                blend=types.Channel(type=RelatedCandidates),
            )
        )
