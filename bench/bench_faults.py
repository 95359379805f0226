"""`make bench-faults`: the operator's faults, done for real to the real pipeline and server, counted.

1. A kill -9 in every step: run, kill the process group once a step not killed yet is RUNNING in ML Metadata,
   rerun, until a run completes; then the pusher killed after each of its renames and after its commit.
   After each kill: every committed version is whole (its manifests check out) and nothing is RUNNING after
   the next rerun.
2. Damaged versions moved in under REST and gRPC load: ten damaged copies of the good version (seven to
   the `pin2vec` index, three to the `cooccurrence` table), each committed with the good version's record.
   Every answer is compared with the good version's.
3. Two runs started at once on one output directory; an edit that keeps a log's size and mtime; a log over
   the bad-row threshold.

    python -m bench.bench_faults --work work/bench/faults [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from bench.docs_section import report
from bench.serving_load import RelatedLoad
from bench.version_damage import INDEX_DAMAGE, TABLE_DAMAGE
from formats import index_files, push_records
from pipeline.config import RunSettings
from pipeline.metadata import connection_config

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- bench-faults:start -->", "<!-- bench-faults:end -->"
PIPELINE = "pin2vec"
RUN_FLAGS = [
    "--min-count", "3", "--epochs", "2", "--embedding-dim", "16", "--negatives", "8", "--batch-size", "64",
    "--min-index-recall", "0.5", "--beam-arg=--runner=DirectRunner",
]  # fmt: skip
UNFINISHED = (mlmd.Execution.NEW, mlmd.Execution.RUNNING)


@dataclasses.dataclass
class Row:
    fault: str
    outcome: str
    ok: bool


def run_command(events: Path, out: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "pipeline.cli", "run", "--events", str(events), "--output-dir", str(out)]
    return command + RUN_FLAGS + list(extra)


def unfinished_nodes(out: Path) -> set[str]:
    """Node ids with an execution NEW or RUNNING in the run's ML Metadata."""
    if not (out / "metadata.sqlite").exists():
        return set()
    store = metadata_store.MetadataStore(connection_config(RunSettings(output_dir=str(out))))
    nodes = set()
    for context in store.get_contexts_by_type("node"):
        executions = store.get_executions_by_context(context.id)
        if any(e.last_known_state in UNFINISHED for e in executions):
            nodes.add(context.name.removeprefix(f"{PIPELINE}."))
    return nodes


def whole_versions(serving: Path) -> tuple[int, int]:
    """(committed versions, those whose every model directory matches its manifest)."""
    records = push_records.committed(str(serving)) if serving.is_dir() else {}
    whole = 0
    for version, record in records.items():
        try:
            for model in record["models"]:
                path = serving / model / str(version)
                if path.is_dir():  # embedding/ is renamed after the commit: a rerun finishes it
                    push_records.check_model_version(str(path))
            whole += 1
        except ValueError:
            pass
    return len(records), whole


def kill_at_every_step(events: Path, out: Path) -> list[Row]:
    rows, killed = [], []
    for _ in range(40):
        process = subprocess.Popen(
            run_command(events, out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        target = None
        while process.poll() is None and target is None:
            target = next(iter(sorted(unfinished_nodes(out) - set(killed))), None)
            time.sleep(0.05)
        if target is None:  # the run finished before any new step could be killed
            break
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        killed.append(target)
        committed, whole = whole_versions(out / "serving")
        print(f"  killed in {target}: {committed} committed versions, {whole} whole", flush=True)
        rows.append(Row(f"kill -9 in {target}", f"{committed} committed, {whole} whole", committed == whole))
    assert process.returncode == 0, f"the last rerun failed (rc {process.returncode})"
    left, (committed, _) = unfinished_nodes(out), whole_versions(out / "serving")
    outcome = f"completed; executions left unfinished: {len(left)}; committed versions: {committed}"
    rows.append(Row(f"rerun after {len(killed)} kills", outcome, not left and committed == 1))
    return rows


def pusher_kills(events: Path, out: Path) -> list[Row]:
    """The pusher dies after each step of a push (new settings make a new version each time)."""
    rows = []
    models = ["pin2vec", "pin2vec_similar", "cooccurrence", "blend", "coldstart", "evaluation"]
    points = [f"after-rename-{m}" for m in models] + ["after-commit"]
    for number, point in enumerate(points):
        # A new model, so a new version; blessed whatever its figures, so that every model is pushed.
        seed = ["--learning-rate", f"{0.011 + number / 1000:.3f}", "--max-hit-rate-drop", "1"]
        killed = subprocess.run(
            run_command(events, out, *seed), cwd=REPO, capture_output=True, text=True,
            env={**os.environ, "PIN2VEC_KILL_AT": point},
        )  # fmt: skip
        before = whole_versions(out / "serving")
        rerun = subprocess.run(run_command(events, out, *seed), cwd=REPO, capture_output=True, text=True)
        after = whole_versions(out / "serving")
        ok = (
            killed.returncode == 137
            and before[0] == before[1]
            and rerun.returncode == 0
            and after[0] == after[1]
        )
        outcome = (
            f"killed rc {killed.returncode}; {before[1]}/{before[0]} committed versions whole; "
            f"rerun rc {rerun.returncode}, {after[1]}/{after[0]} whole"
        )
        print(f"  pusher {point}: {outcome}", flush=True)
        rows.append(Row(f"pusher killed {point}", outcome, ok))
    return rows


def start_server(serving: Path, log: Path) -> tuple[subprocess.Popen, dict]:
    command = [
        sys.executable, "-m", "pipeline.cli", "serve", "--model-base", str(serving), "--rest-port", "0",
        "--grpc-port", "0", "--poll-seconds", "0.2", "--access-log", os.devnull,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    ready = json.loads(process.stdout.readline())
    return process, ready


def _model_state(rest: str, model: str, version: int) -> str | None:
    response = requests.get(f"{rest}/v1/models/{model}", timeout=10)
    if response.status_code != 200:
        return None
    states = {int(s["version"]): s["state"] for s in response.json()["model_version_status"]}
    return states.get(version)


def damaged_versions_under_load(serving: Path, work: Path) -> list[Row]:
    records = push_records.committed(str(serving))
    good = max(records)
    record = records[good]
    item_ids = (serving / "pin2vec" / str(good) / index_files.ITEM_IDS_FILE).read_text().split("\n")[:8]
    server, ready = start_server(serving, work / "server.log")
    rest, grpc_target = f"http://127.0.0.1:{ready['rest_port']}", f"127.0.0.1:{ready['grpc_port']}"
    rows = []
    try:
        running = (
            contextlib.ExitStack()
        )  # the clients stop however this ends, so a failure cannot hang the bench
        loads = [
            running.enter_context(RelatedLoad(rest, grpc_target, model, item_ids))
            for model in ("pin2vec", "cooccurrence")
        ]
        version = good
        damage = [("pin2vec", n, f) for n, f in INDEX_DAMAGE.items()]
        damage += [("cooccurrence", n, f) for n, f in TABLE_DAMAGE.items()]
        for model, name, corrupt in damage:
            version += 1
            staging = serving / f".damaged-{version}"
            shutil.copytree(serving / model / str(good), staging)
            corrupt(staging)
            os.rename(staging, serving / model / str(version))
            push_records.write_commit(str(serving), version, record)
            started = time.monotonic()
            while _model_state(rest, model, version) != "END" and time.monotonic() - started < 30:
                time.sleep(0.05)
            refused = _model_state(rest, model, version) == "END"
            rows.append(Row(f"{model}: {name}", f"refused in {time.monotonic() - started:.2f} s", refused))
        served = sum(load.total_ok() for load in loads)
        while sum(load.total_ok() for load in loads) < served + 100:
            time.sleep(0.05)
        running.close()
        for damaged in range(good + 1, version + 1):  # as an operator would: the record first, then the files
            os.remove(os.path.join(push_records.commits_dir(str(serving)), f"{damaged}.json"))
            for model in ("pin2vec", "cooccurrence"):
                shutil.rmtree(serving / model / str(damaged), ignore_errors=True)
        for load in loads:
            model = load.rest_url.rsplit("/", 1)[-1].removesuffix(":predict")
            for protocol, counts in load.counts.items():
                outcome = (
                    f"{counts.ok + counts.different + counts.failed:,} requests, {counts.failed} failed, "
                    f"{counts.different} answered from a damaged version"
                )
                rows.append(
                    Row(f"{model} under {protocol} load", outcome, counts.failed == counts.different == 0)
                )
    finally:
        running.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return rows


def concurrent_runs(events: Path, out: Path) -> list[Row]:
    before = len(push_records.committed(str(out / "serving")))
    command = run_command(events, out, "--learning-rate", "0.0199")
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate()[1] for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    refused = sum("another pin2vec run" in o for o in outputs)
    pushed = len(push_records.committed(str(out / "serving"))) - before
    outcome = f"exit codes {codes}, {refused} refused naming the holder, {pushed} new version pushed"
    return [Row("two runs at once on one output directory", outcome, codes == [0, 1] and refused == 1)]


def edited_log_same_size_and_mtime(events: Path, out: Path) -> list[Row]:
    """One digit of one event changed, size and mtime restored: the rerun must read the log again."""
    shard = sorted(p for p in events.iterdir() if p.is_file())[0]
    stat = shard.stat()
    text = shard.read_text()
    last_line = text.rstrip("\n").rsplit("\n", 1)[-1]
    user, item, timestamp = last_line.split(",")
    edited = f"{user},{item},{int(timestamp) + 1 if timestamp[-1] != '9' else int(timestamp) - 1}"
    shard.write_text(text[: text.rindex(last_line)] + edited + "\n")
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert shard.stat().st_size == stat.st_size
    done = subprocess.run(run_command(events, out), cwd=REPO, capture_output=True, text=True)
    finished = [line for line in done.stderr.splitlines() if "SessionExampleGen done in" in line]
    cached = any("(cached)" in line for line in finished)
    reread = bool(finished)
    outcome = (
        f"rerun rc {done.returncode}; SessionExampleGen {'reused from cache' if cached else 'ran again'}"
    )
    return [Row("a log edited, same size and mtime", outcome, done.returncode == 0 and reread and not cached)]


def bad_rows_over_threshold(events: Path, work: Path) -> list[Row]:
    bad = work / "bad_events"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(events, bad)
    shard = sorted(p for p in bad.iterdir() if p.is_file())[0]
    lines = shard.read_text().splitlines()
    wanted = len(lines) // 2  # far over the default share of bad rows
    lines[1 : 1 + wanted] = [line.rsplit(",", 1)[0] + ",not-a-time" for line in lines[1 : 1 + wanted]]
    shard.write_text("\n".join(lines) + "\n")
    out = work / "bad_out"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(run_command(bad, out), cwd=REPO, capture_output=True, text=True)
    named = re.findall(r"(/\S+quarantine\.jsonl)", done.stderr)
    path = Path(named[-1]) if named else None
    listed = len(path.read_text().splitlines()) if path and path.exists() else 0
    outcome = f"run rc {done.returncode}; the error's quarantine file lists {listed} of {wanted} bad rows"
    return [Row("a log over the bad-row threshold", outcome, done.returncode != 0 and listed == wanted)]


def table(rows: list[Row], seconds: float, command: str) -> str:
    lines = [
        "## Faults: kills, damaged versions under load, concurrent runs, edited logs, bad rows",
        "",
        f"`{command}` on {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}, "
        f"{seconds / 60:.1f} min, tiny synthetic log (8,000 events, 400 items). Every row is checked by the "
        "bench; `ok` is what it asserts.",
        "",
        "| fault | outcome | ok |",
        "|---|---|---|",
    ]
    lines += [f"| {row.fault} | {row.outcome} | {'yes' if row.ok else '**NO**'} |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default="work/bench/faults")
    parser.add_argument("--write", action="store_true", help="write the table into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    data = work / "data"
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "data", "synthetic", "--items", "400", "--events", "8000",
         "--file-format", "csv", "--out", str(data)],
        cwd=REPO, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    events, out = data / "events", work / "out"
    print("kill -9 in every step ...", flush=True)
    rows = kill_at_every_step(events, out)
    print("damaged versions under load ...", flush=True)
    rows += damaged_versions_under_load(out / "serving", work)
    print("the pusher killed at each step ...", flush=True)
    rows += pusher_kills(events, out)
    print("two runs at once, an edited log, bad rows ...", flush=True)
    rows += concurrent_runs(events, out)
    rows += edited_log_same_size_and_mtime(events, out)
    rows += bad_rows_over_threshold(events, work)
    command = "python -m bench.bench_faults" + (" --write" if args.write else "")
    report(table(rows, time.monotonic() - started, command), START, END, args.write)
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
