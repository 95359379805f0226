"""A capacity model on paper, from slopes measured here: what 1B events x 100M items would take per stage.

Inputs are measurements, not guesses: `bench/bench_scale.py`'s results (seconds and peak memory per stage of
the largest run) and `bench/bench_parameter_servers.py`'s (pair updates per second of one parameter-server
worker, and of the single-process path, on a 1M-item table). Each stage's cost is scaled linearly by what
drives it (events, training pairs, pair updates or catalogue items; bench_scale's slopes against events are
at or below 1, so linear is the conservative side), converted to core-hours, and divided over workers to
finish within the wanted hours. What does not scale linearly, or cannot be split, is said per stage.

    python -m bench.capacity_model --scale work/bench/scale/results.json \
        --ps work/bench/parameter_servers/results.json [--events 1e9 --items 1e8 --hours 4] [--write-docs]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys

from bench.docs_section import BENCHMARKS, write_section

START, END = "<!-- capacity-model:start -->", "<!-- capacity-model:end -->"
DISTRIBUTED = os.path.join(os.path.dirname(BENCHMARKS), "DISTRIBUTED.md")
MEASURED_CORES = 2  # the development machine every input was measured on
EMBEDDING_DIM = 128
# Variables per item on the ps tasks: item table + softmax rows (dim floats each), each with an Adagrad slot.
BYTES_PER_ITEM_ON_PS = 4 * EMBEDDING_DIM * 2 * 2
PS_MEMORY_USABLE = 0.6  # of a ps task's memory, for variables (the rest: gRPC buffers, the runtime)


@dataclasses.dataclass(frozen=True)
class StageModel:
    driver: str  # what its cost grows with: "events", "pairs", "items" or "events_x_items"
    runs_on: str
    memory: str  # what a worker's memory grows with, and the limit at the target


STAGES: dict[str, StageModel] = {
    "SessionExampleGen": StageModel(
        "events", "Beam workers", "a bundle of users' events; one user's sessions must fit"
    ),
    "CooccurrenceCandidates": StageModel(
        "pairs", "Beam workers", "its key range of (item, neighbour) counts; top-K per item after the combine"
    ),
    "StatisticsGen": StageModel("events", "Beam workers", "TFDV sketches: bounded, independent of size"),
    "Transform": StageModel("pairs", "Beam workers", "its key range of item counts (tft.vocabulary combine)"),
    "Evaluator": StageModel(  # every held-out query (grows with events) is ranked against every item
        "events_x_items",
        "Beam workers",
        "the whole model per worker: the exact top-k gate needs a sampled catalogue",
    ),
    "ScannIndexer": StageModel("items", "one machine per index shard", "the shard's vectors, about 3 copies"),
    "ColdStartCandidates": StageModel("events", "Beam workers", "its items' fallback lists"),
    "RelatedEvaluator": StageModel(
        "items", "machines per catalogue shard", "its shard of the catalogue's candidate rows"
    ),
    "RelatedPusher": StageModel("items", "one machine", "streams files: bounded"),
}


@dataclasses.dataclass(frozen=True)
class Target:
    events: float = 1e9
    items: float = 1e8
    hours: float = 4.0
    worker_cores: int = 4
    ps_memory_gb: float = 32.0


@dataclasses.dataclass(frozen=True)
class Measured:
    """The largest bench_scale run, plus the training pairs and epochs it trained with."""

    events: int
    items: int
    pairs: int
    epochs: int
    stages: dict[str, dict]  # name -> {"seconds": s, "peak_bytes": b}


@dataclasses.dataclass(frozen=True)
class StageEstimate:
    stage: str
    driver: str
    measured_seconds: float
    scale: float  # driver at the target / driver measured
    core_hours: float
    workers: int
    measured_peak_gb: float
    runs_on: str
    memory: str


def driver_scale(driver: str, measured: Measured, target: Target) -> float:
    """How many times more of the stage's driver the target has (pairs per event held constant)."""
    if driver in ("events", "pairs"):
        return target.events / measured.events
    if driver == "items":
        return target.items / measured.items
    if driver == "events_x_items":
        return target.events / measured.events * target.items / measured.items
    raise ValueError(f"unknown cost driver {driver!r}")


def estimate_stages(measured: Measured, target: Target) -> list[StageEstimate]:
    """Linear scaling of each measured stage to the target, in core-hours and workers for `hours`."""
    estimates = []
    for name, figures in measured.stages.items():
        model = STAGES.get(name)
        if model is None or "seconds" not in figures:  # the Trainer is sized as a ps cluster: trainer_cluster
            continue
        scale = driver_scale(model.driver, measured, target)
        core_hours = figures["seconds"] * MEASURED_CORES * scale / 3600
        workers = max(1, math.ceil(core_hours / (target.hours * target.worker_cores)))
        estimates.append(
            StageEstimate(
                stage=name,
                driver=model.driver,
                measured_seconds=figures["seconds"],
                scale=scale,
                core_hours=core_hours,
                workers=workers,
                measured_peak_gb=figures.get("peak_bytes", 0) / 1e9,
                runs_on=model.runs_on,
                memory=model.memory,
            )
        )
    return estimates


@dataclasses.dataclass(frozen=True)
class TrainerCluster:
    pair_updates: float
    workers: int
    ps_tasks: int
    variables_gb: float


def trainer_cluster(measured: Measured, target: Target, updates_per_worker_second: float) -> TrainerCluster:
    """Workers from the measured ps-worker throughput; ps tasks from the variables' size."""
    pairs = measured.pairs * target.events / measured.events
    updates = pairs * 2 * measured.epochs  # symmetric pairs: both directions every epoch
    workers = max(1, math.ceil(updates / (updates_per_worker_second * target.hours * 3600)))
    variables = target.items * BYTES_PER_ITEM_ON_PS
    ps_tasks = max(1, math.ceil(variables / (target.ps_memory_gb * 1e9 * PS_MEMORY_USABLE)))
    return TrainerCluster(updates, workers, ps_tasks, variables / 1e9)


def ps_worker_rate(measured: Measured, rates: tuple[float, float]) -> float:
    """Pair updates per second one ps worker would do: the pipeline Trainer's own measured rate (its real
    input pipeline and vocabulary), times what the ps path cost against the single-process path when both
    trained the same pairs in one bench run."""
    cluster_rate, single_rate = rates
    return pipeline_trainer_rate(measured) * cluster_rate / single_rate


def pipeline_trainer_rate(measured: Measured) -> float:
    """Pair updates per second of the measured run's single-process Trainer (both directions each epoch)."""
    return measured.pairs * 2 * measured.epochs / measured.stages["Trainer"]["seconds"]


def largest_run(scale_results: list[dict]) -> Measured:
    """The run with the most events (then items) in bench_scale's results.json, its median stages and the
    epochs its Trainer trained."""
    from bench.bench_scale import median_run, runs_of

    result = max(scale_results, key=lambda r: (r["events"], r["items"]))
    runs = runs_of(result)
    epochs = max(run.get("epochs", 0) for run in runs)
    if epochs < 1:
        raise SystemExit("bench_scale's results record no epochs trained: rerun bench_scale for this case")
    stages = median_run(runs)["stages"]
    return Measured(result["events"], result["items"], result["pairs_train"], epochs, stages)


def ps_throughput(ps_results: dict) -> tuple[float, float]:
    """Median pair updates per second of the ps cluster's one worker and of the single-process path."""

    def rate(role: str) -> float:
        return statistics.median(r[role]["pair_updates"] / r[role]["seconds"] for r in ps_results["rounds"])

    return rate("cluster"), rate("single")


def format_report(
    measured: Measured,
    target: Target,
    estimates: list[StageEstimate],
    cluster: TrainerCluster,
    rates: tuple[float, float],
    command: str,
) -> str:
    lines = [
        START,
        f"`{command}`. From the {measured.events:,}-event x {measured.items:,}-item run of bench_scale "
        f"({measured.pairs:,} training pairs, {measured.epochs} epochs, {MEASURED_CORES} cores) to "
        f"**{target.events:,.0f} events x {target.items:,.0f} items in {target.hours:g} hours** on "
        f"{target.worker_cores}-core workers. Each stage is scaled linearly by its driver; core-hours = "
        f"measured seconds x {MEASURED_CORES} cores x scale.",
        "",
        "| stage | grows with | measured s | x scale | core-hours | workers for the hours | measured peak GB "
        "(whole machine) | runs on | a worker's memory holds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in estimates:
        lines.append(
            f"| {e.stage} | {e.driver} | {e.measured_seconds:,.0f} | {e.scale:,.0f} | {e.core_hours:,.1f} | "
            f"{e.workers} | {e.measured_peak_gb:.2f} | {e.runs_on} | {e.memory} |"
        )
    cluster_rate, single_rate = rates
    worker_rate = ps_worker_rate(measured, rates)
    pipeline_rate = pipeline_trainer_rate(measured)
    lines += [
        "",
        f"**Trainer on parameter servers:** {cluster.pair_updates:,.0f} pair updates ({measured.epochs} "
        f"epochs of both directions). The pipeline's Trainer did {pipeline_rate:,.0f} updates/s "
        "single-process; in bench-parameter-servers the ps path did "
        f"{cluster_rate / single_rate:.2f}x the single-process rate on the same pairs, so one ps worker is "
        f"taken at {worker_rate:,.0f} updates/s: "
        f"**{cluster.workers} workers** finish in {target.hours:g} hours if throughput adds up per worker "
        "(asynchronous updates; not measured beyond one worker here). Variables: "
        f"{cluster.variables_gb:,.0f} GB (item table and softmax rows, {EMBEDDING_DIM}-d float32, each with "
        "an Adagrad slot) -> "
        f"**{cluster.ps_tasks} ps tasks** of {target.ps_memory_gb:g} GB (at most {PS_MEMORY_USABLE:.0%} for "
        "variables).",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="work/bench/scale/results.json", help="bench_scale results.json")
    parser.add_argument("--ps", default="work/bench/parameter_servers/results.json")
    parser.add_argument("--events", type=float, default=Target.events)
    parser.add_argument("--items", type=float, default=Target.items)
    parser.add_argument("--hours", type=float, default=Target.hours)
    parser.add_argument("--worker-cores", type=int, default=Target.worker_cores)
    parser.add_argument("--ps-memory-gb", type=float, default=Target.ps_memory_gb)
    parser.add_argument("--write-docs", action="store_true", help="into docs/DISTRIBUTED.md")
    args = parser.parse_args(argv)
    with open(args.scale) as f:
        measured = largest_run(json.load(f))
    with open(args.ps) as f:
        rates = ps_throughput(json.load(f))
    target = Target(args.events, args.items, args.hours, args.worker_cores, args.ps_memory_gb)
    command = "python -m bench.capacity_model " + " ".join(argv if argv is not None else sys.argv[1:])
    text = format_report(
        measured,
        target,
        estimate_stages(measured, target),
        trainer_cluster(measured, target, ps_worker_rate(measured, rates)),
        rates,
        command,
    )
    print(text)
    if args.write_docs:
        write_section(text, START, END, path=DISTRIBUTED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
