"""The one pipeline definition shared by every runner (local, Kubeflow)."""

from __future__ import annotations

import json

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.anomaly_gate.component import AnomalyGate
from components.batched_evaluator import executor as batched_evaluator
from components.board_cooccurrence.component import BoardCooccurrence
from components.code_version import CODE_VERSION_KEY, code_version
from components.coldstart.component import ColdStartCandidates
from components.cooccurrence.component import CooccurrenceCandidates
from components.related_evaluator.component import RelatedEvaluator
from components.related_pusher.component import RelatedPusher
from components.scann_indexer.component import ScannIndexer
from components.session_example_gen.component import SessionExampleGen
from components.session_example_gen.spans_lib import rolling_range
from components.warm_start_trainer import executor as warm_start_trainer
from components.warm_start_trainer.base_model_resolver import LatestBlessedModelFromOtherExamplesStrategy
from formats.settings_codec import settings_to_value
from pipeline import packaged_schema
from pipeline.config import EvaluationSettings, PipelineSettings
from pipeline.hit_rate_metric import HitRateAtK
from pipeline.packaged_schema import PACKAGED_SCHEMA, packaged_file
from trainer_module import features
from trainer_module.run import TRAINER_CONFIG_KEY

PREPROCESSING_FN = "trainer_module.preprocessing.preprocessing_fn"
RUN_FN = "trainer_module.run.run_fn"
HIT_RATE_AT_10 = "hit_rate_at_10"
HIT_RATE_AT_50 = "hit_rate_at_50"


def schema_path() -> str:
    """The curated schema of the training pairs, shipped inside the package."""
    return packaged_file(PACKAGED_SCHEMA)


def make_eval_config(settings: EvaluationSettings) -> tfma.EvalConfig:
    """Next-item hit rate over the whole vocabulary, from the top rows of the model's scoring signature.

    The metric's config carries the code version of the metric and the executor, the Evaluator's only
    place for it, so that the cache does not reuse a verdict from older gate code.
    """
    metric_code_version = code_version(HitRateAtK.__module__, batched_evaluator.__name__)

    def hit_rate(k: int, name: str, threshold: tfma.MetricThreshold | None = None) -> tfma.MetricConfig:
        return tfma.MetricConfig(
            class_name=HitRateAtK.__name__,
            module=HitRateAtK.__module__,
            config=json.dumps({"k": k, "name": name, CODE_VERSION_KEY: metric_code_version})[1:-1],
            threshold=threshold,
        )

    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=features.SCORING_SIGNATURE,
                label_key=features.LABEL_INDEX,
                preprocessing_function_names=[features.TRANSFORM_SIGNATURE],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    hit_rate(
                        10,
                        HIT_RATE_AT_10,
                        tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(
                                lower_bound={"value": settings.min_hit_rate_at_10}
                            ),
                            change_threshold=tfma.GenericChangeThreshold(
                                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                absolute={"value": -settings.max_hit_rate_drop - 1e-9},
                            ),
                        ),
                    ),
                    hit_rate(features.SCORING_TOP_K, HIT_RATE_AT_50),
                ]
            )
        ],
    )


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    settings: PipelineSettings,
    serving_dir: str,
    input_fingerprint: str | None = None,
    collections_fingerprint: str | None = None,
    metadata_connection_config=None,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = True,
    stock_resolvers_only: bool = False,
    trainer_job: dict | None = None,
) -> tfx.dsl.Pipeline:
    """Engagement logs -> training pairs -> vocabulary -> model -> evaluation -> two ScaNN indexes (what the
    network predicts next, and its cosine neighbours); co-occurrence (and, given collections, board)
    candidates and the blend, evaluated side by side on held-out engagements -> push.

    `input_fingerprint` (default: computed from the input files' names, sizes and times) changes whenever
    the input files do, so that the cache never reuses pairs made from older logs.

    The Trainer warm-starts from the newest blessed model not trained on this run's examples
    (components/warm_start_trainer), unless `settings.cold_start`. `stock_resolvers_only` (Kubeflow: its v2
    compiler turns only TFX's own resolver strategies into queries) makes that the latest blessed model,
    so there a rerun on unchanged logs retrains warm instead of coming from the cache.

    `trainer_job` (Kubeflow on Vertex AI: `kubeflow_runner.vertex_trainer_config`) makes the Trainer step
    submit a training job of several replicas with these `custom_config` entries instead of training in
    its own process.
    """
    example_gen = SessionExampleGen(
        source=settings.source,
        settings=settings.sessions,
        input_fingerprint=input_fingerprint,
        range_config=None if settings.num_spans is None else rolling_range(settings.num_spans),
    )
    sample_rate = settings.statistics_sample_rate
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=tfdv.StatsOptions(sample_rate=sample_rate) if sample_rate and sample_rate < 1 else None,
        exclude_splits=["train"] if settings.statistics_skip_train else None,
    )
    # Package-relative, resolved where the step runs: the same spec works in any install (a Kubeflow pod).
    schema_gen = tfx.components.ImportSchemaGen(schema_file=PACKAGED_SCHEMA)
    schema_gen.executor_spec = executor_spec.ExecutorClassSpec(packaged_schema.Executor)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    anomaly_gate = AnomalyGate(
        anomalies=example_validator.outputs["anomalies"],
        code_version=code_version("components.anomaly_gate.component"),
    )

    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={
            "vocabulary_min_count": settings.trainer.vocabulary_min_count,
            CODE_VERSION_KEY: code_version(PREPROCESSING_FN.rsplit(".", 1)[0]),
        },
        splits_config=tfx.proto.SplitsConfig(analyze=["train"]),
        # Analysis only: the Trainer applies the transform graph to each parsed batch of raw pairs
        # (trainer_module/input_pipeline.py). Materialized, every pair would be written again as its own
        # Beam element, which cost more than training at scale.
        materialize=False,
        # Its own pre- and post-transform statistics would describe every pair twice more; StatisticsGen
        # already validates the input.
        disable_statistics=True,
    )
    transform.add_upstream_node(anomaly_gate)

    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    warm_start_resolver = None
    if settings.cold_start:
        base_model = None
    elif stock_resolvers_only:
        base_model = baseline_resolver.outputs["model"]
    else:
        warm_start_resolver = tfx.dsl.Resolver(
            strategy_class=LatestBlessedModelFromOtherExamplesStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
            examples=example_gen.outputs["examples"],
        ).with_id("warm_start_model_resolver")
        base_model = warm_start_resolver.outputs["model"]

    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        base_model=base_model,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={
            TRAINER_CONFIG_KEY: settings_to_value(settings.trainer),
            CODE_VERSION_KEY: code_version(RUN_FN.rsplit(".", 1)[0], warm_start_trainer.__name__),
            **(trainer_job or {}),
        },
    )
    # The stock Trainer, then how the model was started recorded on its artifact (warm; carried, new, dropped
    # items); with `trainer_job`, the same executor in every replica of a Vertex AI training job.
    trainer.executor_spec = executor_spec.ExecutorClassSpec(warm_start_trainer.Executor)
    if trainer_job is not None:  # imported only here: Vertex AI's client libraries are slow to import
        from components.warm_start_trainer import vertex_executor

        trainer.executor_spec = executor_spec.ExecutorClassSpec(vertex_executor.Executor)

    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=make_eval_config(settings.evaluation),
        example_splits=["eval"],
    )
    # Fixed-size input batches: each batch is ranked against the whole item table (see the executor).
    evaluator.executor_spec = executor_spec.BeamExecutorSpec(batched_evaluator.Executor)

    indexer = ScannIndexer(
        model=trainer.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        index_config=settings.index,
    )

    cooccurrence = CooccurrenceCandidates(
        examples=example_gen.outputs["examples"], settings=settings.cooccurrence
    )
    # Every item engaged in the window, rare ones included: what `related` falls back to (formats/coldstart).
    coldstart = ColdStartCandidates(
        example_gen.outputs["examples"],
        settings.source,
        settings.sessions,
        settings.cooccurrence,
        input_fingerprint=input_fingerprint,
    )
    board = None
    if settings.collections is not None:
        board = BoardCooccurrence(
            settings.collections, settings.board, input_fingerprint=collections_fingerprint
        )
    related_evaluator = RelatedEvaluator(
        examples=example_gen.outputs["examples"],
        index=indexer.outputs["index"],
        next_index=indexer.outputs["next_index"],
        candidates=cooccurrence.outputs["candidates"],
        board=None if board is None else board.outputs["candidates"],
        coldstart=coldstart.outputs["candidates"],
        model_run=trainer.outputs["model_run"],
        settings=settings.blend,
        rerank_settings=settings.rerank,
        titles_path=settings.titles_path,
        run_settings=settings_to_value(settings),  # plain JSON values: tuples -> lists, as stored
        serving_base_dir=serving_dir,
    )

    pusher = RelatedPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        index=indexer.outputs["index"],
        next_index=indexer.outputs["next_index"],
        serving_base_dir=serving_dir,
        cooccurrence=cooccurrence.outputs["candidates"],
        board=None if board is None else board.outputs["candidates"],
        coldstart=coldstart.outputs["candidates"],
        blend=related_evaluator.outputs["blend"],
        evaluation=related_evaluator.outputs["evaluation"],
        settings=settings.push,
    )

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            anomaly_gate,
            transform,
            *([warm_start_resolver] if warm_start_resolver is not None else []),
            trainer,
            baseline_resolver,
            evaluator,
            indexer,
            cooccurrence,
            coldstart,
            *([board] if board is not None else []),
            related_evaluator,
            pusher,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
