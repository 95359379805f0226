"""Cost curves: the whole pipeline on synthetic logs of growing size, time and peak memory per stage.

For each case (events x items) this generates a seeded synthetic log (`pin2vec data synthetic`), runs
`pin2vec run` on it in a fresh output directory as its own process, and samples the resident memory of that
process and all its children (Beam workers included) every half second, attributing each sample to the
component running at the time (from the run's progress lines). The baseline measured in the same run is the
floor of any pipeline over the log: reading every shard once with pyarrow's multi-threaded CSV reader.

    python -m bench.bench_scale --case 1M:100K --case 1M:1M --case 5M:1M --repeat 3 --write-docs

With --repeat N every case runs N times, in rounds over the cases (an interrupted bench still has every case);
the table reports medians and lists each run's total. Results go to <work>/results.json and, with
--write-docs, to the `bench-scale` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

import psutil

from bench.docs_section import write_section

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION_START = "<!-- bench-scale:start -->"
SECTION_END = "<!-- bench-scale:end -->"
_STARTED = re.compile(r"\] > (\S+) \.\.\.")
_DONE = re.compile(r"\]   (\S+) done in ([0-9.]+)s")
_SUFFIX = {"K": 1_000, "M": 1_000_000}


def parse_count(text: str) -> int:
    """'20M' -> 20_000_000, '100K' -> 100_000, '5000' -> 5000."""
    text = text.strip().upper()
    if text and text[-1] in _SUFFIX:
        return int(float(text[:-1]) * _SUFFIX[text[-1]])
    return int(text)


def parse_case(text: str) -> tuple[int, int, int | None]:
    """'20M:1M' -> (events, items, None); '20M:1M:1' caps that case at one run whatever --repeat says."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"case {text!r}: expected EVENTS:ITEMS[:RUNS], e.g. 20M:1M")
    return parse_count(parts[0]), parse_count(parts[1]), int(parts[2]) if len(parts) == 3 else None


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (0 for ones that exit while being read)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def log_slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) against log(x): 1 means linear cost."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def _cli(*args: str) -> list[str]:
    return [os.path.join(os.path.dirname(sys.executable), "pin2vec"), *args]


def generate(events: int, items: int, work: str, seed: int) -> str:
    out = os.path.join(work, f"data-{events}x{items}-s{seed}")
    if not os.path.exists(os.path.join(out, "synthetic.json")):
        subprocess.run(
            _cli(
                "data",
                "synthetic",
                "--events",
                str(events),
                "--items",
                str(items),
                "--seed",
                str(seed),
                "--out",
                out,
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def read_floor(events_dir: str) -> float:
    """Seconds to read every shard once with pyarrow (all cores): what no pipeline can beat."""
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    rows = 0
    for name in sorted(os.listdir(events_dir)):
        rows += pacsv.read_csv(os.path.join(events_dir, name)).num_rows
    if rows == 0:
        raise ValueError(f"no rows in {events_dir}")
    return time.perf_counter() - started


def run_pipeline(events_dir: str, output_dir: str, log_path: str) -> dict:
    """One `pin2vec run` with memory sampling; returns total seconds, peak bytes and per-stage figures."""
    stages: dict[str, dict] = {}
    current = {"stage": None}
    peak = {"bytes": 0}
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            _cli("run", "--events", events_dir, "--output-dir", output_dir, "--no-cache"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        watched = psutil.Process(process.pid)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                rss = tree_rss(watched)
                peak["bytes"] = max(peak["bytes"], rss)
                stage = current["stage"]
                if stage:
                    stages.setdefault(stage, {"peak_bytes": 0})
                    stages[stage]["peak_bytes"] = max(stages[stage]["peak_bytes"], rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for line in process.stdout:
            log.write(line)
            log.flush()
            if match := _STARTED.search(line):
                current["stage"] = match.group(1)
            elif match := _DONE.search(line):
                stages.setdefault(match.group(1), {"peak_bytes": 0})["seconds"] = float(match.group(2))
        returncode = process.wait()
        done.set()
        sampler.join()
    if returncode:
        raise RuntimeError(f"pin2vec run failed ({returncode}); see {log_path}")
    return {"seconds": time.perf_counter() - started, "peak_bytes": peak["bytes"], "stages": stages}


def runs_of(result: dict) -> list[dict]:
    """A case's runs (results written before --repeat hold a single "run")."""
    return result.get("runs") or [result["run"]]


def median_run(runs: list[dict]) -> dict:
    """Median seconds (total and per stage) and the highest peak memory over repeated runs of one case."""
    names = dict.fromkeys(name for run in runs for name in run["stages"])  # pipeline order
    stages = {}
    for name in names:
        seen = [run["stages"][name] for run in runs if name in run["stages"]]
        stages[name] = {"peak_bytes": max(s.get("peak_bytes", 0) for s in seen)}
        seconds = [s["seconds"] for s in seen if "seconds" in s]
        if seconds:
            stages[name]["seconds"] = statistics.median(seconds)
    return {
        "seconds": statistics.median(run["seconds"] for run in runs),
        "peak_bytes": max(run["peak_bytes"] for run in runs),
        "stages": stages,
    }


def _commits(result: dict) -> str:
    commits = [run.get("commit") or result.get("commit", "?") for run in runs_of(result)]
    return ", ".join(dict.fromkeys(commits))


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f}"


def report(args, results: list[dict]) -> str:
    medians = [median_run(runs_of(r)) for r in results]
    stage_names: list[str] = []
    for median in medians:
        for name, figures in median["stages"].items():
            if name not in stage_names and figures.get("seconds", 0) >= 1.0:
                stage_names.append(name)
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {platform.node()} ({os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB), `python -m bench.bench_scale "
        + " ".join(f"--case {c}" for c in args.case)
        + f" --repeat {args.repeat}"
        + "`. Synthetic logs (`pin2vec data synthetic`, seed 0, 4 CSV shards); every run `--no-cache`, "
        "default settings; peak memory is the resident memory of the `pin2vec run` process and all its "
        "children, sampled every 0.5 s. Read floor: every shard read once by pyarrow's CSV reader. "
        "Times are medians over the case's runs (each run's total is listed), peak memory the highest "
        "over them. Commit: the code each row was measured with (rows kept by --keep may predate later "
        "changes).",
        "",
        "| events | items | commit | train pairs | total s (median) | runs s | read floor s | total / floor "
        "| peak GB | " + " | ".join(f"{n} s (GB)" for n in stage_names) + " |",
        "|" + "---|" * (9 + len(stage_names)),
    ]
    for r, median in zip(results, medians, strict=True):
        stages = median["stages"]
        cells = [
            f"{stages[n].get('seconds', 0):.0f} ({_gb(stages[n]['peak_bytes'])})" if n in stages else "-"
            for n in stage_names
        ]
        each_run = " / ".join(f"{run['seconds']:.0f}" for run in runs_of(r))
        lines.append(
            f"| {r['events']:,} | {r['items']:,} | {_commits(r)} | {r.get('pairs_train', 0):,} "
            f"| {median['seconds']:.0f} | {each_run} "
            f"| {r['floor_s']:.1f} | {median['seconds'] / r['floor_s']:.0f}x "
            f"| {_gb(median['peak_bytes'])} | " + " | ".join(cells) + " |"
        )
    seconds = [m["seconds"] for m in medians]
    for items in sorted({r["items"] for r in results}):
        same = [(r["events"], t) for r, t in zip(results, seconds, strict=True) if r["items"] == items]
        slope = log_slope(same)
        if slope is not None:
            lines.append(
                f"\nTime against events at {items:,} items: slope {slope:.2f} on log-log (1.00 = linear)."
            )
        slope = log_slope(
            [(r["pairs_train"], t) for r, t in zip(results, seconds, strict=True) if r["items"] == items]
        )
        if slope is not None:
            lines.append(f"Time against training pairs at {items:,} items: slope {slope:.2f}.")
        slope = log_slope(
            [
                (r["events"], m["peak_bytes"])
                for r, m in zip(results, medians, strict=True)
                if r["items"] == items
            ]
        )
        if slope is not None:
            lines.append(f"Peak memory against events at {items:,} items: slope {slope:.2f}.")
    for events in sorted({r["events"] for r in results}):
        same = [(r["items"], t) for r, t in zip(results, seconds, strict=True) if r["events"] == events]
        slope = log_slope(same)
        if slope is not None:
            lines.append(f"\nTime against items at {events:,} events: slope {slope:.2f} on log-log.")
    return "\n".join(lines) + "\n"


def current_commit() -> str:
    """The short commit of the code being measured, with "+" when the work tree has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(  # changed tracked files; an untracked .venv link is not the code
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + ("+" if dirty.stdout.strip() else "")


def _pairs_train(output_dir: str) -> int:
    import sqlite3

    db = sqlite3.connect(os.path.join(output_dir, "metadata.sqlite"))
    row = db.execute(
        "SELECT int_value FROM ArtifactProperty WHERE name = 'pairs_train' ORDER BY artifact_id DESC LIMIT 1"
    ).fetchone()
    return int(row[0]) if row else 0


def _epochs_trained(output_dir: str) -> int:
    """Epochs the run's Trainer trained (its history.json), which --max-pair-updates may have capped."""
    pattern = os.path.join(output_dir, "**", "Trainer", "model_run", "*", "history.json")
    histories = sorted(glob.glob(pattern, recursive=True))
    if not histories:
        return 0
    with open(histories[-1]) as f:
        return len(json.load(f).get("loss", []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--case",
        action="append",
        required=True,
        help="EVENTS:ITEMS[:RUNS], e.g. 20M:1M or 20M:1M:1 (repeatable)",
    )
    parser.add_argument("--work", default=os.path.join(REPO, "work", "bench", "scale"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the runs already in <work>/results.json for the listed cases and add only missing ones",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the table reports medians")
    args = parser.parse_args(argv)
    runs_wanted = {(e, i): args.repeat if n is None else n for e, i, n in map(parse_case, args.case)}
    cases = list(runs_wanted)
    os.makedirs(args.work, exist_ok=True)
    results: dict[tuple[int, int], dict] = {}
    results_path = os.path.join(args.work, "results.json")
    if args.keep and os.path.exists(results_path):
        with open(results_path) as f:
            for r in json.load(f):
                if (r["events"], r["items"]) in cases:
                    results[(r["events"], r["items"])] = {**r, "runs": runs_of(r)}
                    results[(r["events"], r["items"])].pop("run", None)
    for round_ in range(max(runs_wanted.values())):
        for events, items in cases:
            runs = len(results.get((events, items), {}).get("runs", []))
            if runs > round_ or round_ >= runs_wanted[(events, items)]:
                continue
            data = generate(events, items, args.work, args.seed)
            events_dir = os.path.join(data, "events")
            floor = read_floor(events_dir)
            output_dir = os.path.join(args.work, f"run-{events}x{items}")
            shutil.rmtree(output_dir, ignore_errors=True)  # a fresh store: no baseline model, no cache
            print(
                f"{events:,} events x {items:,} items, run {round_ + 1} of {runs_wanted[(events, items)]}: "
                f"read floor {floor:.1f}s; running the pipeline",
                flush=True,
            )
            run = run_pipeline(events_dir, output_dir, output_dir + ".log")
            result = results.setdefault((events, items), {"events": events, "items": items, "runs": []})
            result.update(floor_s=floor, pairs_train=_pairs_train(output_dir))
            result["runs"].append({**run, "commit": current_commit(), "epochs": _epochs_trained(output_dir)})
            print(f"  {run['seconds']:.0f}s, peak {_gb(run['peak_bytes'])} GB", flush=True)
            with open(results_path, "w") as f:
                json.dump(sorted(results.values(), key=lambda r: (r["items"], r["events"])), f, indent=2)
    results = sorted(results.values(), key=lambda r: (r["items"], r["events"]))
    text = report(args, results)
    print(text)
    if args.write_docs:
        write_section(text, SECTION_START, SECTION_END)


if __name__ == "__main__":
    main()
