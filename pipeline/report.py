"""The end-of-run summary printed by `pin2vec run`."""

from __future__ import annotations

import math
import sys

from components.related_evaluator.report_view import paired_rows
from formats.coldstart import describe_coverage
from formats.evaluation_result import COVERAGE_KEY
from pipeline.config import RunSettings
from pipeline.summary import DROP, FLOOR, GateFailure, RunSummary


def _store_name(run: RunSettings) -> str:
    """Where the run's ML Metadata lives: a file, or a MySQL server and database (pipeline name within it)."""
    if not run.mysql:
        return run.sqlite_path
    where = f"mysql://{run.mysql.host}:{run.mysql.port}/{run.mysql.database}"
    return f"{where} (pipeline {run.pipeline_name!r})"


def print_summary(
    summary: RunSummary, run: RunSettings, result: dict, titles_file: str | None = None, stream=None
) -> None:
    out = stream or sys.stdout
    cached = sum(1 for _, _, was_cached in result["components"] if was_cached)
    lines = [
        "",
        f"pin2vec run finished in {result['seconds']:.0f}s "
        f"({len(result['components'])} components, {cached} from cache)",
        "",
        "Data:",
        *span_lines(summary),
        "  " + ", ".join(f"{k}={v}" for k, v in summary.examples.items()),
        f"  bad rows quarantined: {summary.bad_rows} -> {summary.quarantine_file}",
        *([line] if (line := model_start_line(summary)) else []),
        "Evaluator gate (model softmax, next-item hit rate on the validation queries):",
    ]
    for name, value in sorted(summary.metrics.items()):
        change = summary.metric_changes.get(name)
        versus = f"  ({change:+.4f} vs the last blessed model)" if change is not None else ""
        lines.append(f"  {name}: {value:.4f}{versus}")
    lines.append(f"  blessed: {'yes' if summary.blessed else 'NO'}")
    lines += [f"  {line}" for line in gate_advice(summary)]
    if summary.index_recall is not None:
        next_recall = (
            "" if summary.next_index_recall is None else f"{summary.next_index_recall:.3f} (pin2vec), "
        )
        lines.append(
            f"ScaNN indexes: {summary.index_items} items, recall@{summary.index_k} vs exact search "
            f"{next_recall}{summary.index_recall:.3f} (pin2vec_similar)"
        )
    lines += related_lines(summary.related)
    lines += stability_lines(summary.stability)
    if summary.pushed_version is not None:
        lines.append(
            f"Pushed version {summary.pushed_version} to "
            f"{summary.pushed_dir}/{{{','.join(summary.pushed_models)}}}/"
        )
        if summary.kept_back_reason:
            lines.append(
                f"  The model was kept back ({summary.kept_back_reason}); the sources that do not depend on "
                f"it were pushed, and serving answers from {summary.default_source or 'none'}, the best of "
                "them on the validation queries."
            )
        elif summary.default_source:
            lines.append(f"  Serving answers from {summary.default_source} by default (best on validation).")
    else:
        lines.append(f"NOT pushed: {summary.not_pushed_reason or 'the pusher did not run'}")
    titles_flag = f" --titles {titles_file}" if titles_file else ""
    lines += [
        "",
        "Outputs:",
        f"  pipeline artifacts: {summary.pipeline_root}",
        f"  ML Metadata:        {_store_name(run)}",
        f"  serving versions:   {run.serving_dir}",
        f"  model (SavedModel): {summary.model_dir}",
        f"  run report:         {summary.report_html or '(not written)'}{report_version_note(summary)}",
        f"  full log:           {result['log_file']}",
        "",
        "Next:",
        f"  open the run report: {summary.report_html or '(not written)'}",
        f"  pin2vec related --output-dir {run.output_dir}{titles_flag} "
        "[--source pin2vec|pin2vec_similar|cooccurrence|board|blend] ID [ID ...]",
        f"  tensorboard --logdir {summary.tensorboard_dir}",
    ]
    print("\n".join(lines), file=out)


def report_version_note(summary: RunSummary) -> str:
    """The version the run report describes. The report is written before the push and calls itself a
    candidate; this is where its reader learns what became of it."""
    if not summary.report_html:
        return ""
    if summary.pushed_version is None:
        return " (its candidate was not pushed)"
    kept_back = ", without the model, which was kept back" if summary.kept_back_reason else ""
    return f" (its candidate is pushed version {summary.pushed_version}{kept_back})"


def span_lines(summary: RunSummary) -> list[str]:
    """Which spans of a span pattern the run read, and which the window lacked (none for a plain input)."""
    if not summary.spans:
        return []
    spans = summary.spans
    listed = ", ".join(spans) if len(spans) <= 8 else f"{spans[0]} .. {spans[-1]}"
    lines = [f"  spans read: {len(spans)} ({listed}) of {summary.input_pattern}"]
    if summary.missing_spans:
        lines.append(
            f"  missing in the window (no files, skipped): {', '.join(summary.missing_spans)}; "
            "the run used the spans that exist"
        )
    return lines


def model_start_line(summary: RunSummary) -> str:
    """How the Trainer started the model, in one line ("" when the Model artifact does not say)."""
    if summary.warm_start is None:
        return ""
    if summary.warm_start:
        return (
            f"Trainer: warm start from {summary.warm_start_base_model}: {summary.items_carried_over} items "
            f"carried over, {summary.items_new} new, {summary.items_dropped} dropped "
            "(--cold-start to retrain from scratch)"
        )
    why = summary.warm_start_note or "--cold-start, or no blessed model trained on other examples"
    return f"Trainer: cold start, {summary.items_new} items ({why})"


def gate_advice(summary: RunSummary) -> list[str]:
    """When the Evaluator's gate refused the model: which check failed, and the advice for that check only.

    The floor (--min-hit-rate) and the drop against the last blessed model (--max-hit-rate-drop) are separate
    checks; loosening one does not pass the other, so each failed check gets its own line and its own flag.
    """
    if summary.blessed or not summary.gate_failures:
        return []
    by_check = {failure.check: failure for failure in summary.gate_failures}
    lines = []
    if FLOOR in by_check:
        lines.append(floor_advice(by_check[FLOOR]))
    if DROP in by_check:
        lines.append(drop_advice(by_check[DROP], summary))
    if len(lines) > 1:
        lines.append("Both checks failed: the model passes only when each of them does.")
    return lines


def floor_advice(failure: GateFailure) -> str:
    if failure.value is None:
        return f"Failed the floor: HR@10 was not measured (--min-hit-rate {failure.limit:g})."
    at_most = math.floor(round(failure.value * 10_000, 6)) / 10_000  # never above the measured value
    return (
        f"Failed the floor: HR@10 {failure.value:.4f} is below --min-hit-rate {failure.limit:g}. "
        "Improve the model (more data, epochs, --embedding-dim), or accept this level with "
        f"--min-hit-rate {at_most:.4f} or lower."
    )


def drop_advice(failure: GateFailure, summary: RunSummary) -> str:
    """The drop against the last blessed model, next to the sampling noise that can explain it.

    On small logs HR@10 over a few thousand validation queries moves by about a point between equally good
    models, and the default gate tolerates no drop, so a person needs the size of the noise to decide.
    """
    change = failure.value
    if change is None:
        return f"Failed the drop check against the blessed model (--max-hit-rate-drop {failure.limit:g})."
    text = (
        f"Failed the drop check: HR@10 is {-change:.4f} below the last blessed model's, more than "
        f"--max-hit-rate-drop {failure.limit:g} tolerates"
    )
    hit_rate, queries = summary.metrics.get("hit_rate_at_10"), summary.metrics.get("example_count")
    if hit_rate is not None and queries:
        error = math.sqrt(hit_rate * (1.0 - hit_rate) / queries)
        size = "within" if -change <= error else "beyond"
        text += f"; {size} one standard error ({error:.4f} on {queries:.0f} validation queries)"
    return (
        f"{text}. The last blessed model keeps serving; to accept drops this small, rerun with "
        f"--max-hit-rate-drop {math.ceil(round(-change * 100, 6)) / 100:.2f}."
    )


def related_lines(evaluation: dict) -> list[str]:
    """The held-out test figures of every source, best first as chosen on validation."""
    if not evaluation:
        return []
    test = evaluation["splits"]["test"]
    queries = next(iter(test.values()))["queries"]
    lines = [
        f"Related items on held-out engagements ({queries} test queries; best source by validation: "
        f"{evaluation['best_source']}, blend weight {evaluation['blend']['weight']:.1f}):",
        "  source         HR@10   HR@20   HR@50  MRR@10  cover@10  HR@10 head/torso/tail",
    ]
    for name, m in test.items():
        buckets = "/".join(f"{m['buckets'][b]['hit_rate']['10']:.3f}" for b in ("head", "torso", "tail"))
        lines.append(
            f"  {name:<13} {m['hit_rate']['10']:.4f}  {m['hit_rate']['20']:.4f}  {m['hit_rate']['50']:.4f}"
            f"  {m['mrr']['10']:.4f}  {m['coverage']['10']:.4f}    {buckets}"
        )
    paired = paired_rows(evaluation, "test")
    if paired:
        against = evaluation["comparisons"]["against"]
        noise = {True: "", False: " (within noise)"}
        parts = [f"{source} {cells[0].text}{noise[cells[0].clear]}" for source, cells in paired]
        lines.append(f"  HR@10 minus {against}'s on the same queries, 95% interval: " + "; ".join(parts))
    if coverage := describe_coverage(evaluation.get(COVERAGE_KEY)):
        lines.append(f"  {coverage}")
    return lines


def stability_lines(stability: dict | None) -> list[str]:
    """How much of the served related lists this candidate keeps (overlap@10), or why it was not measured."""
    if stability is None:
        return []
    if stability.get("overlap_at_10") is None:
        return [f"Neighbour stability: not measured ({stability.get('reason') or 'no items in common'})"]
    buckets = "/".join(
        "-" if b.get("overlap_at_10") is None else f"{b['overlap_at_10']:.3f}"
        for b in (stability["buckets"].get(name, {}) for name in ("head", "torso", "tail"))
    )
    served = stability.get("served_source")
    against = f"{served}'s" if served and served != stability["source"] else "its"
    pinned = (
        " (pinned by a rollback)"
        if stability.get("pinned_version") == stability.get("served_version")
        else ""
    )
    version = stability["served_version"]
    lines = [
        f"Neighbour stability (overlap@10 of related lists with the served version {version}{pinned}): "
        f"{stability['source']} keeps {stability['overlap_at_10']:.3f} of {against} lists over "
        f"{stability['items']} items in both, head/torso/tail {buckets}"
    ]
    others = [
        f"{name} {figure['overlap_at_10']:.3f}"
        for name, figure in stability.get("sources", {}).items()
        if figure.get("overlap_at_10") is not None
    ]
    if others:
        lines.append("  each source against its own served version: " + ", ".join(others))
    return lines
