"""The end-of-run summary printed by `pin2vec run`."""

from __future__ import annotations

import sys

from pipeline.config import RunSettings
from pipeline.summary import RunSummary


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
        "  " + ", ".join(f"{k}={v}" for k, v in summary.examples.items()),
        f"  bad rows quarantined: {summary.bad_rows} -> {summary.quarantine_file}",
        "Evaluator (next-item hit rate over the whole vocabulary, time-held-out eval split):",
    ]
    for name, value in sorted(summary.metrics.items()):
        change = summary.metric_changes.get(name)
        versus = f"  ({change:+.4f} vs the last blessed model)" if change is not None else ""
        lines.append(f"  {name}: {value:.4f}{versus}")
    lines.append(f"  blessed: {'yes' if summary.blessed else 'NO'}")
    if summary.index_recall is not None:
        lines.append(
            f"ScaNN index: {summary.index_items} items, recall@{summary.index_k} vs exact search "
            f"{summary.index_recall:.3f}"
        )
    if summary.pushed_version is not None:
        lines.append(
            f"Pushed version {summary.pushed_version} to {summary.pushed_dir}/{{embedding,related}}/"
        )
    else:
        lines.append(f"NOT pushed: {summary.not_pushed_reason or 'the pusher did not run'}")
    titles_flag = f" --titles {titles_file}" if titles_file else ""
    lines += [
        "",
        "Outputs:",
        f"  pipeline artifacts: {summary.pipeline_root}",
        f"  ML Metadata:        {run.mysql.host if run.mysql else run.sqlite_path}",
        f"  serving versions:   {run.serving_dir}",
        f"  model (SavedModel): {summary.model_dir}",
        f"  full log:           {result['log_file']}",
        "",
        "Next:",
        f"  pin2vec related --output-dir {run.output_dir}{titles_flag} ID [ID ...]",
        f"  tensorboard --logdir {summary.tensorboard_dir}",
    ]
    print("\n".join(lines), file=out)
