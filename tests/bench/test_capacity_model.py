"""The capacity model's arithmetic: linear scaling by each stage's driver, workers and ps tasks."""

import math

import pytest

from bench.capacity_model import (
    BYTES_PER_ITEM_ON_PS,
    Measured,
    Target,
    driver_scale,
    estimate_stages,
    format_report,
    largest_run,
    ps_throughput,
    ps_worker_rate,
    trainer_cluster,
)

MEASURED = Measured(
    events=20_000_000,
    items=1_000_000,
    pairs=30_000_000,
    epochs=5,
    stages={
        "SessionExampleGen": {"seconds": 400.0, "peak_bytes": 5e9},
        "ScannIndexer": {"seconds": 60.0, "peak_bytes": 7e9},
        "Evaluator": {"seconds": 100.0, "peak_bytes": 6e9},
        "Trainer": {"seconds": 1_000.0, "peak_bytes": 4e9},  # sized as a ps cluster, not in the table
        "NotAStage": {"seconds": 1.0, "peak_bytes": 1.0},  # unknown names are left out, not guessed
    },
)
TARGET = Target(events=1e9, items=1e8, hours=4, worker_cores=4, ps_memory_gb=32)


def test_each_driver_scales_by_its_own_ratio():
    assert driver_scale("events", MEASURED, TARGET) == 50
    assert driver_scale("pairs", MEASURED, TARGET) == 50
    assert driver_scale("items", MEASURED, TARGET) == 100
    assert driver_scale("events_x_items", MEASURED, TARGET) == 5000
    with pytest.raises(ValueError, match="unknown cost driver"):
        driver_scale("moon phase", MEASURED, TARGET)


def test_core_hours_and_workers_follow_the_measurement():
    by_name = {e.stage: e for e in estimate_stages(MEASURED, TARGET)}
    assert set(by_name) == {"SessionExampleGen", "ScannIndexer", "Evaluator"}
    sessions = by_name["SessionExampleGen"]
    assert sessions.core_hours == pytest.approx(400 * 2 * 50 / 3600)  # 11.1 core-hours
    assert sessions.workers == 1  # fits one 4-core worker in 4 hours
    evaluator = by_name["Evaluator"]
    assert evaluator.core_hours == pytest.approx(100 * 2 * 5000 / 3600)
    assert evaluator.workers == math.ceil(evaluator.core_hours / 16)
    assert by_name["ScannIndexer"].measured_peak_gb == pytest.approx(7.0)


def test_trainer_cluster_sizes_workers_by_throughput_and_ps_by_memory():
    cluster = trainer_cluster(MEASURED, TARGET, updates_per_worker_second=100_000)
    assert cluster.pair_updates == pytest.approx(30e6 * 50 * 2 * 5)
    assert cluster.workers == math.ceil(cluster.pair_updates / (100_000 * 4 * 3600))
    assert cluster.variables_gb == pytest.approx(1e8 * BYTES_PER_ITEM_ON_PS / 1e9)
    assert cluster.ps_tasks == math.ceil(cluster.variables_gb / (32 * 0.6))


def test_ps_throughput_is_the_median_over_rounds():
    rounds = [
        {"cluster": {"pair_updates": 100, "seconds": s}, "single": {"pair_updates": 100, "seconds": 1}}
        for s in (1, 2, 4)
    ]
    assert ps_throughput({"rounds": rounds}) == (50, 100)


def test_report_names_every_estimated_stage_and_the_trainer_cluster():
    estimates = estimate_stages(MEASURED, TARGET)
    cluster = trainer_cluster(MEASURED, TARGET, 100_000)
    text = format_report(MEASURED, TARGET, estimates, cluster, (100_000, 200_000), "python -m x")
    for estimate in estimates:
        assert f"| {estimate.stage} |" in text
    assert f"**{cluster.ps_tasks} ps tasks**" in text and f"**{cluster.workers} workers**" in text


def test_largest_run_takes_the_biggest_case_and_its_epochs():
    def case(events, epochs):
        run = {"seconds": 10.0, "peak_bytes": 1, "stages": {"Trainer": {"seconds": 5.0, "peak_bytes": 1}}}
        runs = [{**run, "epochs": epochs}]
        return {"events": events, "items": 10, "pairs_train": events // 2, "runs": runs}

    measured = largest_run([case(1_000, 25), case(20_000, 4)])
    assert (measured.events, measured.pairs, measured.epochs) == (20_000, 10_000, 4)
    assert measured.stages["Trainer"]["seconds"] == 5.0
    with pytest.raises(SystemExit, match="no epochs trained"):
        largest_run([case(20_000, 0)])


def test_a_ps_worker_runs_at_the_pipeline_rate_times_the_measured_ps_cost():
    # 30M pairs x 2 directions x 5 epochs in 1,000 s = 300,000 updates/s; the ps path at half the speed
    assert ps_worker_rate(MEASURED, (50.0, 100.0)) == pytest.approx(150_000)
