"""What a finished run produced, read back from ML Metadata: the figures and paths a person asks for."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from formats import evaluation_result
from pipeline.metadata import custom_value, latest_outputs

# (node id, output key) of the artifacts the summary reads.
EXAMPLES = ("SessionExampleGen", "examples")
QUARANTINE = ("SessionExampleGen", "quarantine")
EVALUATION = ("Evaluator", "evaluation")
BLESSING = ("Evaluator", "blessing")
MODEL = ("Trainer", "model")
MODEL_RUN = ("Trainer", "model_run")
INDEX = ("ScannIndexer", "index")
NEXT_INDEX = ("ScannIndexer", "next_index")
PUSHED = ("RelatedPusher", "pushed_model")
RELATED_EVALUATION = ("RelatedEvaluator", "evaluation")


@dataclass
class RunSummary:
    pipeline_root: str = ""
    examples: dict = field(default_factory=dict)
    quarantine_file: str = ""
    bad_rows: int = 0
    metrics: dict = field(default_factory=dict)
    metric_changes: dict = field(default_factory=dict)  # candidate - last blessed model, when there is one
    blessed: bool = False
    model_dir: str = ""
    tensorboard_dir: str = ""
    index_recall: float | None = None
    index_k: int | None = None
    index_items: int | None = None
    next_index_recall: float | None = None  # the pin2vec (next-engagement) index; index_* is the cosine one
    pushed_version: int | None = None
    pushed_dir: str = ""
    not_pushed_reason: str = ""  # why the model was not pushed (the rest may have been: see pushed_version)
    default_source: str = ""  # what serving and `pin2vec related` answer from after this push
    related: dict = field(default_factory=dict)  # the RelatedEvaluator's evaluation.json
    report_html: str = ""
    report_markdown: str = ""
    pushed_models: list[str] = field(default_factory=list)  # the model folders the pusher published into

    @property
    def kept_back_reason(self) -> str:
        """Why a push went out without the model's parts (empty when all of it went out, or nothing did)."""
        return self.not_pushed_reason if self.pushed_version is not None else ""


def read_overall_metrics(evaluation_uri: str) -> tuple[dict[str, float], dict[str, float]]:
    """The candidate model's overall-slice metrics, and their change against the baseline (if any)."""
    import tensorflow_model_analysis as tfma

    metrics, changes = {}, {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for key_and_value in per_slice.metric_keys_and_values:
            key, value = key_and_value.key, key_and_value.value
            if not value.HasField("double_value") or key.model_name not in ("", "candidate"):
                continue
            (changes if key.is_diff else metrics)[key.name] = value.double_value.value
    return metrics, changes


def summarize_run(config, pipeline_name: str, pipeline_root: str, run_id: str | None = None) -> RunSummary:
    """The run's figures; with `run_id` (run_local's), that run's own, else the newest of the pipeline's."""
    artifacts = latest_outputs(config, pipeline_name, run_id=run_id)
    summary = RunSummary(pipeline_root=pipeline_root)
    if examples := artifacts.get(EXAMPLES):
        summary.examples = {
            key: custom_value(examples, key)
            for key in (
                "events_read",
                "pairs_train",
                "pairs_eval",
                "pairs_test",
                "pairs_rerank",
                "dropped_rare_item_events",
                "dropped_short_sessions",
                "bad_rows",
            )
            if custom_value(examples, key) is not None
        }
    if quarantine := artifacts.get(QUARANTINE):
        summary.quarantine_file = os.path.join(quarantine.uri, "quarantine.jsonl")
        summary.bad_rows = int(custom_value(quarantine, "bad_rows", 0))
    if evaluation := artifacts.get(EVALUATION):
        summary.metrics, summary.metric_changes = read_overall_metrics(evaluation.uri)
    summary.blessed = custom_value(artifacts.get(BLESSING), "blessed", 0) == 1
    if model := artifacts.get(MODEL):
        summary.model_dir = os.path.join(model.uri, "Format-Serving")
    if model_run := artifacts.get(MODEL_RUN):
        summary.tensorboard_dir = model_run.uri
    if index := artifacts.get(INDEX):
        summary.index_recall = custom_value(index, "recall_at_k")
        summary.index_k = custom_value(index, "k")
        summary.index_items = custom_value(index, "num_items")
    if next_index := artifacts.get(NEXT_INDEX):
        summary.next_index_recall = custom_value(next_index, "recall_at_k")
    related = artifacts.get(RELATED_EVALUATION)
    if related and os.path.isfile(os.path.join(related.uri, evaluation_result.EVALUATION_FILE)):
        summary.related = evaluation_result.read_evaluation(related.uri).raw
        summary.report_html = os.path.join(related.uri, evaluation_result.REPORT_HTML)
        summary.report_markdown = os.path.join(related.uri, evaluation_result.REPORT_MARKDOWN)
    if pushed := artifacts.get(PUSHED):
        if custom_value(pushed, "pushed", 0) == 1:
            summary.pushed_version = custom_value(pushed, "pushed_version")
            summary.pushed_dir = custom_value(pushed, "pushed_destination", "")
            summary.default_source = custom_value(pushed, "default_source", "")
            summary.pushed_models = [m for m in custom_value(pushed, "pushed_models", "").split(",") if m]
        summary.not_pushed_reason = custom_value(pushed, "not_pushed_reason", "")
    return summary
