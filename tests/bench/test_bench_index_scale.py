"""bench/bench_index_scale: the streamed vectors, exact brute force, the faiss and brute-force method
processes' work (run in-process on 2,000 items) and the report's table."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bench import bench_index_scale as scale
from bench import bench_index_scale_report as scale_report
from bench import docs_section
from bench.bench_index_scale_data import (
    MappedMatrix,
    VectorSpec,
    exact_top_k,
    generate_block,
    merge_top_k,
    topic_model,
    write_vectors,
)
from bench.bench_index_scale_methods import RECALL_TOLERANCE, MethodConfig, nprobe_candidates, run
from bench.bench_index_scale_shards import merge_shard_results, shard_bounds, shards_needed
from components.scann_indexer.index_lib import exact_neighbors, recall_at_k

SPEC = VectorSpec(items=2_000, dim=16, items_per_topic=50, topic_rank=3, seed=3)


@pytest.fixture(scope="module")
def vectors_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vectors") / "vectors.npy")
    write_vectors(path, SPEC)
    return path


def test_vectors_are_seeded_unit_rows_of_the_spec(vectors_path, tmp_path):
    vectors = np.load(vectors_path)
    assert vectors.shape == (2_000, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors, generate_block(SPEC, topic_model(SPEC), 0))
    again = str(tmp_path / "again.npy")
    write_vectors(again, SPEC)
    np.testing.assert_array_equal(np.load(again), vectors)
    # Clustered: an item's nearest other item is much closer than a random one.
    sims = vectors[:100] @ vectors.T
    np.fill_diagonal(sims[:, :100], -1)
    assert np.median(sims.max(axis=1)) > 0.3 > np.median(np.abs(sims))


def test_spec_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"VectorSpec\.items must be an integer >= 1"):
        VectorSpec(items=0)


def test_exact_top_k_over_blocks_matches_index_lib(vectors_path):
    matrix = MappedMatrix(vectors_path)
    queries = matrix.rows(np.arange(0, 2_000, 37))
    ids, scores = exact_top_k(matrix.blocks(301), queries, 10)  # blocks that do not divide N
    expected = exact_neighbors(np.load(vectors_path), queries, 10)
    assert ids.shape == (len(queries), 10)
    assert recall_at_k(ids, expected) == 1.0
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    assert (ids[:, 0] == np.arange(0, 2_000, 37)).all()  # each query is its own best match


def test_exact_top_k_needs_k_items():
    blocks = [(0, np.eye(4, dtype=np.float32))]
    with pytest.raises(ValueError, match="only 4 items"):
        exact_top_k(blocks, np.eye(4, dtype=np.float32)[:1], 5)


def test_mapped_matrix_rejects_other_arrays(tmp_path):
    path = str(tmp_path / "ints.npy")
    np.save(path, np.zeros((3, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="expected a C-order float32"):
        MappedMatrix(path)


def test_nprobe_candidates_end_at_the_number_of_lists():
    assert nprobe_candidates(1) == [1]
    assert nprobe_candidates(45) == [1, 2, 4, 8, 16, 32, 45]
    assert nprobe_candidates(64) == [1, 2, 4, 8, 16, 32, 64]


def test_memory_budget_lets_faiss_and_brute_force_run_at_10m_but_not_scann():
    for method in ("brute", "faiss"):
        assert scale.estimated_anon_bytes(method, 10_000_000, 128) < 9e9
    for method in ("scann", "scann_pipeline_normalize"):
        assert scale.estimated_anon_bytes(method, 10_000_000, 128) > 9e9
        assert scale.estimated_anon_bytes(method, 1_000_000, 128) < 9e9
    assert scale.brute_single_queries(10_000_000, None) == 10
    assert scale.brute_single_queries(1_000_000, None) == 50


@pytest.fixture(scope="module")
def method_results(vectors_path, tmp_path_factory):
    """brute force then faiss, as the bench's method processes run them, on the 2,000 vectors."""
    work = tmp_path_factory.mktemp("methods")
    results = []
    for method in ("brute", "faiss"):
        config = MethodConfig(
            method=method,
            vectors_path=vectors_path,
            result_path=str(work / f"{method}.json"),
            work_dir=str(work / method),
            truth_path=str(work / "truth.npy"),
            queries=200,
            repeats=2,
            brute_single_queries=20,
            target_recall=0.9,
        )
        result = run(config)
        result.update(sampled_peak={"RssAnon": 1, "VmRSS": 1, "RssFile": 0}, wall_s=1.0)
        results.append(result)
        with open(config.result_path) as f:
            assert json.load(f)["recall"] == result["recall"]
    return work, results


def test_faiss_reaches_the_target_recall_against_brute_force(method_results):
    work, (brute, faiss) = method_results
    truth = np.load(work / "truth.npy")
    assert truth.shape == (200, 10)
    assert brute["recall"] == 1.0
    assert faiss["recall"] >= 0.9 - RECALL_TOLERANCE
    assert recall_at_k(np.load(work / "faiss.ids.npy"), truth) == pytest.approx(faiss["recall"])
    assert faiss["nprobe_sweep"][-1][1] >= 0.9 - RECALL_TOLERANCE
    assert all(recall < 0.9 - RECALL_TOLERANCE for _, recall in faiss["nprobe_sweep"][:-1])  # the smallest
    assert faiss["index_bytes"] > SPEC.nbytes  # IVF-Flat keeps every vector
    assert not os.path.exists(work / "faiss" / "faiss.index")
    assert len(faiss["batched_qps"]) == 2 and faiss["single_ms"]["n"] == 200
    assert brute["single_ms"]["n"] == 20
    assert faiss["memory"]["VmHWM"] > 0


def test_table_has_a_row_per_method_and_the_header_columns(method_results):
    _, results = method_results
    size = {"items": 2_000, "dim": 16, "topics": 40, "generate_s": 0.1, "results": results}
    size["skipped"] = [{"method": "scann_pipeline_normalize", "estimated_anon_bytes": 1.2e10}]
    lines = scale_report.markdown_table([size])
    columns = lines[0].count("|")
    assert len(lines) == 2 + 3
    assert all(line.count("|") == columns for line in lines)
    assert "faiss IVF-Flat" in lines[3] and "skipped" in lines[4]
    faiss_single_vs_brute = lines[3].split("|")[10].strip()
    assert faiss_single_vs_brute.split(" / ")[0].endswith("x")


def test_write_section_replaces_only_its_own_section(tmp_path):
    path = str(tmp_path / "BENCHMARKS.md")
    start, end = scale_report.SECTION_START, scale_report.SECTION_END  # the report's text carries its markers
    with open(path, "w") as f:
        f.write("# Benchmarks\n\n<!-- other:start -->\nkeep\n<!-- other:end -->\n")
    docs_section.write_section(f"{start}\nfirst\n{end}\n", start, end, path)
    docs_section.write_section(f"{start}\nsecond\n{end}\n", start, end, path)
    with open(path) as f:
        text = f.read()
    assert "keep" in text and "second" in text and "first" not in text
    assert text.count(scale_report.SECTION_START) == 1


def test_shards_cover_the_items_and_merge_by_score():
    assert shard_bounds(10, 3) == [(0, 3), (3, 7), (7, 10)]
    with pytest.raises(ValueError, match="shards must be in"):
        shard_bounds(2, 3)
    merged = merge_shard_results(
        [(np.array([[0, 1]]), np.array([[0.9, 0.2]])), (np.array([[1, 0]]), np.array([[0.8, 0.7]]))],
        starts=[0, 5],
        k=3,
    )
    assert merged.tolist() == [[0, 6, 5]]
    assert shards_needed(10_000_000, lambda n: n <= 4_000_000) == 3
    assert shards_needed(5, lambda n: True) == 1


@pytest.mark.slow
def test_whole_bench_with_scann_on_a_small_set(tmp_path, capsys):
    """The real thing end to end (ScaNN's processes import TensorFlow: ~40 s each). A budget just under
    one ScaNN build's estimate makes the bench skip it and build ScaNN in two shards instead."""
    budget = (scale.estimated_anon_bytes("scann", 2_500, 16) + 1e3) / 1e9  # shards over brute_force_below
    argv = ["--items", "5000", "--dim", "16", "--queries", "100", "--repeats", "1", "--work", str(tmp_path)]
    assert scale.main([*argv, "--memory-budget-gb", str(budget)]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| 5,000 |")]
    assert len(rows) == 5 and "ScaNN in 2 shards" in printed and printed.count("skipped") == 2
    with open(tmp_path / "result_n5000.json") as f:
        result = json.load(f)
    assert [r["method"] for r in result["results"]] == ["brute", "scann_sharded", "faiss"]
    assert min(r["recall"] for r in result["results"]) >= 0.9
    assert not os.path.exists(tmp_path / "n5000")  # files deleted
    # Again with the one-piece ScaNN only, keeping the earlier rows and ground truth.
    assert scale.main([*argv, "--methods", "scann", "--merge-results"]) == 0
    with open(tmp_path / "result_n5000.json") as f:
        merged = json.load(f)
    methods = [r["method"] for r in merged["results"]]
    assert methods == ["brute", "scann", "scann_sharded", "faiss"]
    assert merged["results"][1]["recall"] >= 0.9 and merged["results"][0].get("earlier_run")


def test_merge_top_k_keeps_the_best_k_of_each_row():
    best_ids = np.array([[0, 1], [2, 3]])
    best_scores = np.array([[0.5, 0.1], [0.9, 0.8]], dtype=np.float32)
    ids, scores = merge_top_k(
        best_ids,
        best_scores,
        rows=np.array([0, 0, 1]),
        ids=np.array([7, 8, 9]),
        scores=np.array([0.7, 0.05, 0.85], dtype=np.float32),
    )
    assert ids.tolist() == [[7, 0], [2, 9]]
    np.testing.assert_allclose(scores, [[0.7, 0.5], [0.9, 0.85]])


def test_plan_runs_sharded_scann_exactly_where_one_build_is_over_budget():
    args = scale.parse_args(["--memory-budget-gb", "9"])
    run_1m, skipped_1m = scale.plan_methods(args, 1_000_000)
    assert run_1m == ["brute", "scann", "scann_pipeline_normalize", "faiss"] and skipped_1m == []
    run_10m, skipped_10m = scale.plan_methods(args, 10_000_000)
    assert run_10m == ["brute", "scann_sharded", "faiss"]
    assert [s["method"] for s in skipped_10m] == ["scann", "scann_pipeline_normalize"]
    tiny = scale.parse_args(["--memory-budget-gb", "0.001"])
    assert scale.plan_methods(tiny, 1_000)[0] == ["brute", "scann_sharded"]  # brute force always runs


def test_report_only_renders_saved_results_without_running_anything(method_results, tmp_path, capsys):
    _, results = method_results
    size = {"items": 2_000, "dim": 16, "topics": 40, "generate_s": 0.1, "results": results, "skipped": []}
    size["skipped"] = [{"method": "scann", "estimated_anon_bytes": 1.7e10}]
    with open(tmp_path / "result_n2000.json", "w") as f:
        json.dump(size, f)
    argv = ["--report-only", "--items", "2000", "--dim", "16", "--work", str(tmp_path)]
    assert scale.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(scale_report.SECTION_START)
    assert printed.rstrip().endswith(scale_report.SECTION_END)
    assert len([line for line in printed.splitlines() if line.startswith("| 2,000 |")]) == 3
    assert "scann was not run: its estimated peak anonymous memory 17.0 GB is over the 9 GB" in printed
    assert sorted(os.listdir(tmp_path)) == ["result_n2000.json"]
