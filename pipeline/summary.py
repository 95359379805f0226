"""What a finished run produced, read back from ML Metadata: the figures and paths a person asks for."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from components.warm_start_trainer import properties as model_start
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
HIT_RATE_AT_10 = "hit_rate_at_10"  # the gated metric (pipeline.pipeline.HIT_RATE_AT_10)


FLOOR, DROP = "floor", "drop"  # the Evaluator's two HR@10 checks: --min-hit-rate, --max-hit-rate-drop


@dataclass(frozen=True)
class GateFailure:
    """One failed check of the Evaluator's gate on HR@10."""

    check: str  # FLOOR (--min-hit-rate) or DROP (--max-hit-rate-drop)
    value: float | None  # FLOOR: the candidate's HR@10; DROP: its change against the last blessed model
    limit: float  # FLOOR: the floor; DROP: the tolerated drop (positive)


@dataclass
class RunSummary:
    pipeline_root: str = ""
    examples: dict = field(default_factory=dict)
    input_pattern: str = ""  # the span pattern read, when the input was one
    spans: list[str] = field(default_factory=list)  # the spans read (dates for a date pattern), oldest first
    missing_spans: list[str] = field(default_factory=list)  # spans inside the window without files
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
    gate_failures: list[GateFailure] | None = None  # the failed checks; None when not known
    warm_start: bool | None = None  # how the Trainer started the model; None when not recorded
    items_carried_over: int = 0
    items_new: int = 0
    items_dropped: int = 0
    warm_start_base_model: str = ""
    warm_start_note: str = ""  # why a run given a base model started cold

    @property
    def stability(self) -> dict | None:
        """evaluation.json's `stability`: the candidate's related lists against the served version's."""
        return self.related.get(evaluation_result.STABILITY_KEY) if self.related else None

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


def read_gate_failures(evaluation_uri: str) -> list[GateFailure] | None:
    """The HR@10 checks that failed, from the Evaluator's validation result; None when there is none."""
    import tensorflow_model_analysis as tfma

    try:
        result = tfma.load_validation_result(evaluation_uri)
    except Exception:  # no (readable) validation result: the caller falls back to the settings
        return None
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            if failure.metric_key.name != HIT_RATE_AT_10:
                continue
            value = failure.metric_value.double_value.value if failure.HasField("metric_value") else None
            threshold = failure.metric_threshold
            if threshold.HasField("value_threshold"):
                failures.append(GateFailure(FLOOR, value, threshold.value_threshold.lower_bound.value))
            elif threshold.HasField("change_threshold"):
                limit = round(max(0.0, -threshold.change_threshold.absolute.value), 6)  # less the 1e-9 margin
                failures.append(GateFailure(DROP, value, limit))
    return failures


def gate_failures_from_settings(
    metrics: dict, changes: dict, min_hit_rate: float, max_hit_rate_drop: float
) -> list[GateFailure]:
    """The same checks computed from the measured figures, when the validation result cannot be read."""
    failures = []
    hit_rate, change = metrics.get(HIT_RATE_AT_10), changes.get(HIT_RATE_AT_10)
    if hit_rate is not None and hit_rate < min_hit_rate:
        failures.append(GateFailure(FLOOR, hit_rate, min_hit_rate))
    if change is not None and change < -max_hit_rate_drop:
        failures.append(GateFailure(DROP, change, max_hit_rate_drop))
    return failures


def summarize_run(
    config, pipeline_name: str, pipeline_root: str, run_id: str | None = None, gate=None
) -> RunSummary:
    """The run's figures; with `run_id` (run_local's), that run's own, else the newest of the pipeline's.

    `gate` (EvaluationSettings) tells which checks failed when the validation result cannot be read."""
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
        summary.input_pattern = custom_value(examples, "input_pattern", "")
        summary.spans = [s for s in custom_value(examples, "span_labels", "").split(",") if s]
        summary.missing_spans = [s for s in custom_value(examples, "missing_spans", "").split(",") if s]
    if quarantine := artifacts.get(QUARANTINE):
        summary.quarantine_file = os.path.join(quarantine.uri, "quarantine.jsonl")
        summary.bad_rows = int(custom_value(quarantine, "bad_rows", 0))
    if evaluation := artifacts.get(EVALUATION):
        summary.metrics, summary.metric_changes = read_overall_metrics(evaluation.uri)
    summary.blessed = custom_value(artifacts.get(BLESSING), "blessed", 0) == 1
    if evaluation and not summary.blessed:
        summary.gate_failures = read_gate_failures(evaluation.uri)
        if summary.gate_failures is None and gate is not None:
            summary.gate_failures = gate_failures_from_settings(
                summary.metrics, summary.metric_changes, gate.min_hit_rate_at_10, gate.max_hit_rate_drop
            )
    if model := artifacts.get(MODEL):
        summary.model_dir = os.path.join(model.uri, "Format-Serving")
        if (warm := custom_value(model, model_start.WARM_START)) is not None:
            summary.warm_start = warm == 1
            summary.items_carried_over = int(custom_value(model, model_start.ITEMS_CARRIED_OVER, 0))
            summary.items_new = int(custom_value(model, model_start.ITEMS_NEW, 0))
            summary.items_dropped = int(custom_value(model, model_start.ITEMS_DROPPED, 0))
            summary.warm_start_base_model = custom_value(model, model_start.BASE_MODEL, "")
            summary.warm_start_note = custom_value(model, model_start.NOTE, "")
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
