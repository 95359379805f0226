"""`make bench-daily`: the daily loop measured end to end, warm against cold, on a daily synthetic log.

Two output directories see the same days arrive one at a time (a view directory that gains one day per run):
one retrains cold every day (`--cold-start`), the other warm-starts from its last blessed model. Each run is
`pin2vec run --events '<view>/{YYYY}-{MM}-{DD}/*.parquet' --days WINDOW`, timed end to end. From each run's
evaluation.json: pin2vec's test HR@10, the overlap@10 of pin2vec's lists with the version it replaces
(`stability`), and the share of the window's engaged items that get an answer (`coverage`).

    python -m bench.bench_daily --work work/bench/daily [--days 10 --first 8 --window 7] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.docs_section import report

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- bench-daily:start -->", "<!-- bench-daily:end -->"
SMALL_RUN = [
    "--min-count", "3", "--embedding-dim", "32", "--negatives", "16", "--batch-size", "128",
    "--beam-arg=--runner=DirectRunner",
]  # fmt: skip


@dataclasses.dataclass
class DayRun:
    mode: str
    day: str
    seconds: float
    trainer_seconds: float
    start: str  # the summary's "Trainer: ..." line
    hit_rate: float | None
    queries: int
    overlap: float | None
    coverage: float | None


def _trainer_seconds(stderr: str) -> float:
    found = re.findall(r"Trainer done in ([\d.]+)s", stderr)
    return float(found[-1]) if found else math.nan


def run_day(view: Path, out: Path, window: int, mode: str, day: str, run_flags: list[str]) -> DayRun:
    pattern = str(view / "{YYYY}-{MM}-{DD}" / "*.parquet")
    command = [sys.executable, "-m", "pipeline.cli", "run", "--events", pattern, "--days", str(window)]
    command += ["--output-dir", str(out), *run_flags] + (["--cold-start"] if mode == "cold" else [])
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run of {day} failed:\n{done.stderr[-3000:]}")
    report_html = re.search(r"run report:\s+(\S+report\.html)", done.stdout)
    evaluation = json.loads((Path(report_html.group(1)).parent / "evaluation.json").read_text())
    test = evaluation["splits"]["test"]["pin2vec"]
    stability = (evaluation.get("stability") or {}).get("sources", {}).get("pin2vec") or {}
    start = next((line for line in done.stdout.splitlines() if line.startswith("Trainer:")), "")
    return DayRun(
        mode,
        day,
        seconds,
        _trainer_seconds(done.stderr),
        start,
        test["hit_rate"]["10"] if isinstance(test["hit_rate"], dict) else None,
        int(test.get("queries", 0)),
        stability.get("overlap_at_10"),
        (evaluation.get("coverage") or {}).get("answered"),
    )


def _fmt(value, spec=".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def table(runs: list[DayRun], args, seconds: float) -> str:
    settings = "default settings" if args.run_defaults else "a small model: " + " ".join(SMALL_RUN)
    lines = [
        "## The daily loop: warm against cold (`make bench-daily`)",
        "",
        f"`python -m bench.bench_daily --days {args.days} --first {args.first} --window {args.window} "
        f"--items {args.items} --events-per-day {args.events_per_day}"
        f"{' --run-defaults' if args.run_defaults else ''}`, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores, {seconds / 60:.0f} min in all, other jobs running. Each row is one "
        f"`pin2vec run` ({settings}) over the newest {args.window} days of `pin2vec data synthetic "
        "--days` (drifting popularity, topics that rise and fade, new items every day), both series on the "
        "same days; overlap@10 is pin2vec's lists against the version the run replaces; coverage is the "
        "share of the window's engaged items that get an answer.",
        "",
        "| day | mode | end to end s | Trainer s | pin2vec test HR@10 (queries) | overlap@10 with the "
        "previous version | coverage | how the Trainer started |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.day} | {run.mode} | {run.seconds:.0f} | {_fmt(run.trainer_seconds, '.0f')} | "
            f"{_fmt(run.hit_rate)} ({run.queries}) | {_fmt(run.overlap)} | {_fmt(run.coverage, '.1%')} | "
            f"{run.start.removeprefix('Trainer: ')[:90]} |"
        )
    by_day: dict[str, dict[str, DayRun]] = {}
    for run in (r for r in runs if r.overlap is not None):  # the seed day has no previous version
        by_day.setdefault(run.day, {})[run.mode] = run
    paired = [d for d in by_day.values() if {"warm", "cold"} <= set(d)]
    if paired:
        ratio = statistics.median(d["warm"].seconds / d["cold"].seconds for d in paired)
        trainer = statistics.median(d["warm"].trainer_seconds / d["cold"].trainer_seconds for d in paired)
        hr = [d["warm"].hit_rate - d["cold"].hit_rate for d in paired if d["warm"].hit_rate is not None]
        overlap = [d["warm"].overlap / d["cold"].overlap for d in paired if d["cold"].overlap]
        per_day = ", ".join(f"{h:+.3f}" for h in hr)
        lines += [
            "",
            f"Over the {len(paired)} days both series had a previous version: warm / cold end-to-end time, "
            f"median {ratio:.2f}x (the Trainer alone {trainer:.2f}x); warm minus cold pin2vec test HR@10, "
            f"mean {statistics.mean(hr):+.3f} (per day {per_day}); overlap@10 warm / cold, median "
            f"{statistics.median(overlap):.2f}x.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--work", default="work/bench/daily")
    parser.add_argument("--days", type=int, default=10, help="days generated (default: %(default)s)")
    parser.add_argument(
        "--first", type=int, default=8, help="first day both series run (default: %(default)s)"
    )
    parser.add_argument("--window", type=int, default=7, help="--days of each run (default: %(default)s)")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--events-per-day", type=int, default=5000)
    parser.add_argument(
        "--run-defaults",
        action="store_true",
        help="pin2vec run's default settings instead of a small model (for logs of 100k+ events a day)",
    )
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "data", "synthetic", "--days", str(args.days), "--items",
         str(args.items), "--events", str(args.events_per_day), "--out", str(data)],
        cwd=REPO, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    days = sorted(p.name for p in data.iterdir() if re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name))
    run_flags = [] if args.run_defaults else SMALL_RUN
    started = time.monotonic()
    runs = []
    for number in range(args.first - 1, args.days + 1):  # the day before the first: each series' seed version
        day = days[number - 1]
        for mode in ("cold", "warm"):
            view = work / f"view-{mode}"
            view.mkdir(parents=True, exist_ok=True)
            for earlier in days[:number]:
                if not (view / earlier).exists():
                    (view / earlier).symlink_to(data / earlier)
            run = run_day(view, work / f"out-{mode}", args.window, mode, day, run_flags)
            print(
                f"{day} {mode}: {run.seconds:.0f} s, HR@10 {_fmt(run.hit_rate)}, overlap {_fmt(run.overlap)}"
            )
            runs.append(run)
    return report(table(runs, args, time.monotonic() - started), START, END, args.write)


if __name__ == "__main__":
    sys.exit(main())
