"""Typed settings for a pipeline run; the CLI builds them from flags, tests build them directly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from components.board_cooccurrence.board_lib import BoardSettings
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.related_evaluator.blend_lib import BlendSettings
from components.related_evaluator.rerank_lib import RerankSettings
from components.related_pusher.push_policy import PushSettings
from components.scann_indexer.index_lib import IndexSettings
from components.session_example_gen.session_settings import EventSource, SessionSettings
from trainer_module.settings import TrainerSettings

DEFAULT_PIPELINE_NAME = "pin2vec"
# The DirectRunner in one process for small inputs, where starting worker processes (each importing
# TensorFlow) costs more than it saves; multi-process, one worker per core, for large ones. Any Beam option
# can be set instead (e.g. --runner=FlinkRunner) through RunSettings.beam_args.
MULTI_PROCESS_MIN_INPUT_BYTES = 256 * 1024 * 1024
IN_PROCESS_BEAM_ARGS = ("--runner=DirectRunner", "--direct_running_mode=in_memory")
MULTI_PROCESS_BEAM_ARGS = (
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
)


# Costs that would otherwise grow with the log and pass training's: beyond STATISTICS_FULL_INPUT_BYTES
# (about 350k events of a typical CSV log) StatisticsGen describes the held-out splits only, not the training
# pairs: TFDV decodes every record of a split before any sampling, so even a sampled training split costs
# time linear in the log, while the held-out pairs come out of the same parser and encoder (same features,
# same types: what the schema checks) for a bounded share of users. Beyond EVALUATION_FULL_INPUT_BYTES
# (about 1.4M events) a proportional share of users is held out for evaluation (the TFMA Evaluator scores
# each held-out query against the whole vocabulary).
STATISTICS_FULL_INPUT_BYTES = 8 * 1024 * 1024
EVALUATION_FULL_INPUT_BYTES = 32 * 1024 * 1024


def default_statistics_skip_train(input_bytes: int) -> bool:
    return input_bytes > STATISTICS_FULL_INPUT_BYTES


def default_eval_user_share(input_bytes: int) -> float:
    return min(1.0, EVALUATION_FULL_INPUT_BYTES / input_bytes) if input_bytes > 0 else 1.0


def default_beam_args(input_bytes: int) -> tuple[str, ...]:
    if input_bytes >= MULTI_PROCESS_MIN_INPUT_BYTES:
        return MULTI_PROCESS_BEAM_ARGS
    return IN_PROCESS_BEAM_ARGS


@dataclass(frozen=True)
class EvaluationSettings:
    """Evaluator gates: an absolute floor and "never worse than the last blessed model"."""

    min_hit_rate_at_10: float = 0.01  # next-item hit rate over the whole vocabulary
    max_hit_rate_drop: float = 0.0  # tolerated absolute drop against the baseline; 0 = never worse

    def __post_init__(self) -> None:
        for name in ("min_hit_rate_at_10", "max_hit_rate_drop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"EvaluationSettings.{name} must be a hit rate in [0, 1]; got {value!r}")


@dataclass(frozen=True)
class MySQLSettings:
    host: str
    database: str
    port: int = 3306
    user: str = ""
    password: str = ""


@dataclass(frozen=True)
class TrainerClusterSettings:
    """The Trainer on several machines (Kubeflow on Vertex AI only): a chief that coordinates, `workers` that
    run the steps and `ps` parameter servers that hold the sharded tables, one Vertex AI CustomJob with three
    worker pools (docs/DISTRIBUTED.md). Both counts 0: the single-process Trainer."""

    workers: int = 0
    ps: int = 0
    project: str = ""  # the Google Cloud project the training job runs in
    region: str = "us-central1"
    machine_type: str = "n1-standard-8"  # the chief's and the workers'
    ps_machine_type: str = "n1-highmem-8"  # ~20 GB of variables per 10M items, split over the ps replicas
    service_account: str = ""  # the job's; empty: Vertex AI's default for custom training

    def __post_init__(self) -> None:
        for name in ("workers", "ps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainerClusterSettings.{name} must be a count >= 0; got {value!r}")
        if self.ps and not self.workers:
            raise ValueError(
                f"TrainerClusterSettings.ps={self.ps} needs TrainerClusterSettings.workers >= 1: parameter "
                "servers only hold variables, the workers run the training steps"
            )
        if self.workers and not self.ps:
            raise ValueError(
                f"TrainerClusterSettings.workers={self.workers} needs TrainerClusterSettings.ps >= 1: the "
                "Trainer's cluster path is parameter-server training (without ps tasks every worker would "
                "train a model of its own)"
            )
        if self.enabled and not self.project:
            raise ValueError(
                "TrainerClusterSettings.project is required with TrainerClusterSettings.workers and "
                "TrainerClusterSettings.ps: the Google Cloud project the Vertex AI training job runs in"
            )

    @property
    def enabled(self) -> bool:
        return self.workers > 0


@dataclass(frozen=True)
class RunSettings:
    """Where a run reads and writes, and how it executes."""

    output_dir: str
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    metadata_path: str | None = None  # SQLite file; default <output_dir>/metadata.sqlite
    mysql: MySQLSettings | None = None  # a shared ML Metadata store instead of SQLite
    beam_args: tuple[str, ...] | None = None  # None: chosen by input size, see default_beam_args()
    enable_cache: bool = True

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.output_dir, "serving")

    @property
    def sqlite_path(self) -> str:
        return self.metadata_path or os.path.join(self.output_dir, "metadata.sqlite")


@dataclass(frozen=True)
class PipelineSettings:
    """Everything that decides what the pipeline computes."""

    source: EventSource
    # With a span pattern in source.path ({SPAN}, {YYYY}-{MM}-{DD}): read the latest this many spans (TFX's
    # RollingRange); None: the latest span only, as TFX's ExampleGen does. See docs/SPANS.md.
    num_spans: int | None = None
    sessions: SessionSettings = field(default_factory=SessionSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    cooccurrence: CooccurrenceSettings = field(default_factory=CooccurrenceSettings)
    blend: BlendSettings = field(default_factory=BlendSettings)
    rerank: RerankSettings = field(default_factory=RerankSettings)  # the learned reranker the blend may use
    collections: EventSource | None = (
        None  # items saved to boards (user_col names the board): the `board` source
    )
    board: BoardSettings = field(default_factory=BoardSettings)
    push: PushSettings = field(default_factory=PushSettings)  # e.g. --min-neighbour-overlap (off by default)
    titles_path: str = ""  # optional TSV item id<TAB>title, shown in the run report
    statistics_sample_rate: float | None = None  # share of each split's pairs StatisticsGen reads; None: all
    statistics_skip_train: bool | None = None  # statistics of the held-out splits only; None: by input size
    # Train from scratch even when a blessed model exists (`--cold-start`); by default the Trainer starts
    # from the newest blessed model not trained on this run's examples and trains `trainer.warm_epochs`.
    cold_start: bool = False


def with_input_size_defaults(
    settings: PipelineSettings, input_bytes: int, size_eval_user_share: bool
) -> PipelineSettings:
    """The settings that depend on the input's size, resolved in one place for every runner: StatisticsGen
    skips the training pairs of a large input (unless set), and, when `size_eval_user_share` (no
    --eval-user-share given), the share of users held out for evaluation shrinks as the input grows."""
    if settings.statistics_skip_train is None:
        settings = replace(settings, statistics_skip_train=default_statistics_skip_train(input_bytes))
    if size_eval_user_share:
        share = default_eval_user_share(input_bytes)
        settings = replace(settings, sessions=replace(settings.sessions, eval_user_share=share))
    return settings
