"""The parameter-server Trainer path on a 1M-item table: 2 ps tasks and a worker on loopback, against the
single-process path on the same pairs, in the same run.

Issue 21 asks whether `trainer_module.distributed` (ParameterServerStrategy) trains a table of a real
catalogue's size, not only the 40 items of the default-suite test. Each round trains the same planted pairs
(item i is always followed by i ^ 1, items Zipf-distributed over the catalogue) once on the single-process
path (`model.fit`, what the Trainer runs without TF_CONFIG) and once on a local cluster (a chief, one worker
and two ps processes, each its own `python -m ...` with its own TF_CONFIG, as Vertex AI would start them).
Reported per path: training seconds, pairs per second, peak resident memory per process, how many shards
the item table had, and planted recall (the planted partner scored above 1,000 random items).

    python -m bench.bench_parameter_servers --items 1000000 --pairs 1000000 --epochs 2 --repeat 2 --write-docs
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import psutil

from bench.docs_section import report
from bench.machine import cpu_description
from pipeline.loopback_ports import free_loopback_ports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = "<!-- bench-parameter-servers:start -->", "<!-- bench-parameter-servers:end -->"
PLANTED_QUERIES = 2_000
RANDOM_RIVALS = 1_000


def planted_pairs(items: int, pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Zipf-like item draws over the catalogue, each followed by its planted partner (i ^ 1)."""
    rng = np.random.default_rng(seed)
    ranks = np.minimum((rng.pareto(0.8, size=pairs) * items / 50).astype(np.int64), items - 1)
    return ranks, ranks ^ 1


def prepare(work: str, items: int, pairs: int) -> dict:
    """Pair files (2 shards: one per worker input pipeline at most), vocabulary and sampler counts."""
    from trainer_module.input_pipeline import write_pairs, write_vocabulary
    from trainer_module.model import write_sampler_file

    manifest = os.path.join(work, "data.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            data = json.load(f)
        if data["items"] == items and data["pairs"] == pairs:
            return data
    os.makedirs(work, exist_ok=True)
    sources, targets = planted_pairs(items, pairs)
    ids = [f"i{k}" for k in range(items)]
    files = [
        write_pairs(
            os.path.join(work, f"pairs-{shard}.gz"),
            [ids[k] for k in sources[shard::2]],
            [ids[k] for k in targets[shard::2]],
        )
        for shard in range(2)
    ]
    counts = np.bincount(np.concatenate([sources, targets]), minlength=items + 1) + 1
    data = {
        "items": items,
        "pairs": pairs,
        "files": files,
        "vocabulary": write_vocabulary(os.path.join(work, "vocabulary.txt"), ids),
        "sampler": write_sampler_file(counts, os.path.join(work, "sampler_counts.txt")),
        # planted recall's queries: drawn like the training items, so they are items the model has seen
        "queries": np.random.default_rng(1).choice(sources, PLANTED_QUERIES).tolist(),
    }
    with open(manifest, "w") as f:
        json.dump(data, f)
    return data


def planted_recall(model, items: int, queries: list[int], seed: int = 1) -> float:
    """Share of the query items whose planted partner outscores 1,000 random items, by the served
    next-engagement scorer (hidden(query) . softmax row(candidate)); no [queries, catalogue] matrix."""
    import tensorflow as tf

    queries = np.asarray(queries, dtype=np.int64)
    rivals = np.random.default_rng(seed).integers(0, items, size=RANDOM_RIVALS)
    hidden = model(tf.constant(queries, tf.int64)).numpy()
    weights = model.softmax_weights.numpy()
    planted = np.einsum("qd,qd->q", hidden, weights[queries ^ 1])
    random_scores = hidden @ weights[rivals].T
    return float((planted[:, None] > random_scores).all(axis=1).mean())


def train(role: str, work: str, epochs: int, batch_size: int) -> None:
    """Runs in its own process: the single-process path or the cluster's chief; writes <role>.json."""
    from trainer_module.distributed import parameter_server_task, train_with_parameter_servers
    from trainer_module.input_pipeline import pair_batches, vocabulary_indexer
    from trainer_module.model import TrainerSettings, build_model

    with open(os.path.join(work, "data.json")) as f:
        data = json.load(f)
    items = data["items"]
    settings = TrainerSettings(epochs=epochs, batch_size=batch_size, cache_input=False)

    def train_batches(to_indices):
        return pair_batches(data["files"], to_indices, batch_size, items, 4, settings.seed, symmetric=True)

    started = time.perf_counter()
    if role == "single":
        model = build_model(items + 1, settings, data["sampler"])
        batches = train_batches(vocabulary_indexer(data["vocabulary"], items))
        history, shards = model.fit(batches, epochs=epochs).history, 1
    else:
        task = parameter_server_task(os.environ["TF_CONFIG"])

        def datasets():
            to_indices = vocabulary_indexer(data["vocabulary"], items)
            return (lambda: train_batches(to_indices)), None

        model, history, shards = train_with_parameter_servers(
            task, items + 1, settings, data["sampler"], datasets
        )
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "pair_updates": 2 * data["pairs"] * epochs,  # symmetric: both directions of every pair
        "loss": [float(v) for v in history["loss"]],
        "shards": shards,
        "planted_recall": planted_recall(model, items, data["queries"]),
    }
    with open(os.path.join(work, f"{role}.json"), "w") as f:
        json.dump(result, f)


class PeakMemory:
    """Samples each named process's resident memory every half second; keeps the peak per name."""

    def __init__(self) -> None:
        self.processes: dict[str, psutil.Process] = {}
        self.peaks: dict[str, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def watch(self, name: str, pid: int) -> None:
        self.processes[name] = psutil.Process(pid)

    def _sample(self) -> None:
        while not self._done.wait(0.5):
            for name, process in list(self.processes.items()):
                with contextlib.suppress(psutil.Error):
                    self.peaks[name] = max(self.peaks.get(name, 0), process.memory_info().rss)

    def stop(self) -> dict[str, int]:
        self._done.set()
        self._thread.join()
        return self.peaks


def _spawn(args: list[str], env: dict, log_path: str) -> subprocess.Popen:
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )


def run_round(work: str, role: str, epochs: int, batch_size: int) -> dict:
    """One training in fresh processes; returns the role's result plus peak memory per process."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    chief_args = ["-m", "bench.bench_parameter_servers", "--role", role, "--work", work]
    chief_args += ["--epochs", str(epochs), "--batch-size", str(batch_size)]
    memory = PeakMemory()
    servers: dict[str, subprocess.Popen] = {}
    if role == "cluster":
        chief, worker, ps0, ps1 = (f"127.0.0.1:{p}" for p in free_loopback_ports(4))
        cluster = {"chief": [chief], "worker": [worker], "ps": [ps0, ps1]}
        for task_type, index in (("worker", 0), ("ps", 0), ("ps", 1)):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
            name = f"{task_type}{index}"
            servers[name] = _spawn(
                ["-m", "trainer_module.distributed"],
                dict(env, TF_CONFIG=tf_config),
                os.path.join(work, f"{name}.log"),
            )
            memory.watch(name, servers[name].pid)
        env = dict(env, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    try:
        coordinator = _spawn(chief_args, env, os.path.join(work, f"{role}.log"))
        memory.watch("chief" if role == "cluster" else "single", coordinator.pid)
        if coordinator.wait() != 0:
            raise RuntimeError(f"{role} training failed; see {os.path.join(work, role + '.log')}")
        for name, process in servers.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited early ({process.returncode}); see {work}/{name}.log")
    finally:
        for process in servers.values():
            process.kill()
            process.wait(timeout=30)
        peaks = memory.stop()
    with open(os.path.join(work, f"{role}.json")) as f:
        result = json.load(f)
    result["peak_gb"] = {name: round(value / 2**30, 2) for name, value in peaks.items()}
    result["load_average"] = round(os.getloadavg()[0], 1)  # the machine is shared: say how busy it was
    return result


def format_report(args, rounds: list[dict[str, dict]], started: str) -> str:
    def rate(result: dict) -> float:
        return result["pair_updates"] / result["seconds"]

    lines = [
        START,
        f"Measured {started} on {cpu_description()}: `python -m bench.bench_parameter_servers --items "
        f"{args.items} --pairs {args.pairs} --epochs {args.epochs} --repeat {args.repeat}`. "
        f"{args.items:,} items x 128-d (item table, softmax rows, Adagrad slots: "
        f"{args.items * 128 * 4 * 4 / 2**30:.1f} GiB of variables), {args.pairs:,} planted pairs trained in "
        f"both directions, batch {args.batch_size}, 64 shared negatives, {args.epochs} epochs. Rounds "
        "alternate the single-process path and the cluster (a chief, 1 worker, 2 ps tasks, each its own "
        "process on loopback); everything shares the machine's cores. Planted recall: share of 2,000 query "
        "items (drawn as the training items are) whose planted partner outscores 1,000 random items.",
        "",
        "| round | path | train s | pair updates/s | item table shards | loss first -> last | planted recall "
        "| peak GB per process | load average after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, by_role in enumerate(rounds, 1):
        for role, result in by_role.items():
            peaks = ", ".join(f"{name} {gb:.2f}" for name, gb in result["peak_gb"].items())
            lines.append(
                f"| {number} | {role} | {result['seconds']:.0f} | {rate(result):,.0f} | {result['shards']} | "
                f"{result['loss'][0]:.3f} -> {result['loss'][-1]:.3f} | {result['planted_recall']:.3f} | "
                f"{peaks} | {result.get('load_average', '-')} |"
            )
    ratios = [by_role["cluster"]["seconds"] / by_role["single"]["seconds"] for by_role in rounds]
    lines += [
        "",
        f"Cluster time / single-process time, per round: {', '.join(f'{r:.2f}x' for r in ratios)} "
        f"(median {statistics.median(ratios):.2f}x).",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", default=os.path.join(REPO, "work", "bench", "parameter_servers"))
    parser.add_argument("--role", choices=("single", "cluster"), help=argparse.SUPPRESS)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    if args.items < 2 or args.pairs < 2:
        parser.error("--items and --pairs must be at least 2")
    if args.role:
        train(args.role, args.work, args.epochs, args.batch_size)
        return 0
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    prepare(args.work, args.items, args.pairs)
    rounds = []
    for number in range(args.repeat):
        by_role = {}
        for role in ("single", "cluster") if number % 2 == 0 else ("cluster", "single"):
            print(f"round {number + 1}: {role} ...", flush=True)
            by_role[role] = run_round(args.work, role, args.epochs, args.batch_size)
            print(f"round {number + 1}: {role} {json.dumps(by_role[role])}", flush=True)
        rounds.append({role: by_role[role] for role in ("single", "cluster")})
    with open(os.path.join(args.work, "results.json"), "w") as f:  # read by bench/capacity_model.py
        json.dump({"items": args.items, "pairs": args.pairs, "epochs": args.epochs, "rounds": rounds}, f)
    return report(format_report(args, rounds, started), START, END, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
