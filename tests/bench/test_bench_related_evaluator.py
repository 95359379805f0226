"""bench/bench_related_evaluator end to end at a tiny size: every phase runs and the sources are measured."""

import numpy as np

from bench import bench_related_evaluator as bench
from components.related_evaluator import rerank_lib


def test_synthetic_inputs_are_padded_rows_over_the_catalogue():
    sizes = bench.Sizes(items=500, top_n=20, pairs=3000, queries=200)
    candidates, (vectors, hidden, softmax_rows), splits = bench.build(sizes)
    assert candidates.pin2vec.ids.shape == (500, 20) and vectors.shape == (500, sizes.dim)
    assert hidden.shape == softmax_rows.shape == vectors.shape
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    ids = candidates.cooccurrence.ids
    assert ids.min() >= -1 and ids.max() < 500 and (ids == -1).any()
    assert candidates.catalogue.names([0, 499]) == ["item0000000", "item0000499"]
    pairs = rerank_lib.pairs_from_batches(bench.pair_batches(sizes), candidates.catalogue)
    assert len(pairs.labels) == 3000 and (pairs.items >= 0).all()
    assert set(splits) == {"training", "validation", "test"} and len(splits["test"]) == 200


def test_every_phase_is_timed_and_written_as_a_table(capsys):
    sizes = bench.Sizes(items=2000, top_n=20, pairs=20000, queries=600)
    phases = bench.run(sizes)
    names = [name for name, _, _ in phases]
    assert len(names) == 9 and "reranker over the whole catalogue" in names
    assert all(seconds >= 0 and rss > 0 for _, seconds, rss in phases)
    hit_rates = capsys.readouterr().out.split("test HR@10: ")[1].split(";")[0]
    assert all(0.0 < float(part.split()[1]) < 1.0 for part in hit_rates.split(", "))  # targets are findable
    lines = bench.table_lines(sizes, phases, bench.peak_rss_gb())
    assert lines[0].startswith("**2,000 items") and len(lines) == 4 + len(phases)
    assert np.isfinite(bench.peak_rss_gb())
