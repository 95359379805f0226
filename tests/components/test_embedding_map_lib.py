"""embedding_map_lib: a numpy PCA that finds planted axes, a deterministic per-bucket sample that keeps the
named items, and the evaluation.json section built from them."""

import numpy as np
import pytest

from components.related_evaluator import embedding_map_lib as lib


def test_pca_finds_the_planted_plane_and_its_variance_shares():
    rng = np.random.default_rng(1)
    # 3 units of spread along e0 + e1, 1 unit along e2, nothing elsewhere: a plane in 6-D.
    a, b = rng.normal(size=(500, 1)) * 3, rng.normal(size=(500, 1))
    vectors = np.hstack([a, a, b, np.zeros((500, 3))]) + 5.0  # an offset the centring removes
    coords, shares = lib.pca_2d(vectors)
    assert coords.shape == (500, 2)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0] == pytest.approx(2 * a.var() / (2 * a.var() + b.var()), rel=0.03)  # about 18 / 19
    # The first axis is a scaled copy of the planted one (positive: the sign is fixed), the second of b.
    assert np.corrcoef(coords[:, 0], a[:, 0])[0, 1] == pytest.approx(1.0, abs=1e-4)
    assert abs(np.corrcoef(coords[:, 1], b[:, 0])[0, 1]) == pytest.approx(1.0, abs=1e-4)
    # Distances along the map are distances in the data (an orthogonal projection, no rescaling).
    assert np.ptp(coords[:, 0]) == pytest.approx(np.ptp(a[:, 0]) * np.sqrt(2), rel=1e-3)


def test_pca_signs_are_fixed_and_degenerate_inputs_do_not_fail():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(50, 8))
    first, _ = lib.pca_2d(vectors)
    again, _ = lib.pca_2d(vectors[::-1])
    np.testing.assert_allclose(first[::-1], again, atol=1e-9)  # same map, not a mirrored one
    coords, shares = lib.pca_2d(np.ones((4, 3)))  # every item alike: no variance at all
    assert np.allclose(coords, 0) and list(shares) == [0.0, 0.0]
    coords, shares = lib.pca_2d(np.array([[0.0], [1.0], [3.0]]))  # one dimension: the second axis is 0
    assert np.allclose(coords[:, 1], 0) and shares[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"non-empty \[items, dimensions\].*\(0, 3\)"):
        lib.pca_2d(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        lib.pca_2d(np.array([[0.0, np.nan], [1.0, 2.0]]))


def test_sample_takes_as_many_from_each_bucket_keeps_the_named_rows_and_is_deterministic():
    buckets = np.array([0] * 30 + [1] * 300 + [2] * 5000)
    rows = lib.sample_rows(buckets, keep=[4000, 7, 4000], max_points=300)
    assert len(rows) == 300 and len(set(rows.tolist())) == 300
    assert {7, 4000} <= set(rows.tolist())
    per_bucket = np.bincount(buckets[rows], minlength=3)
    assert per_bucket[0] == 30  # the small head bucket is drawn whole; its unused share goes to the others
    assert per_bucket[1] in (134, 135) and per_bucket[2] in (135, 136)
    np.testing.assert_array_equal(rows, lib.sample_rows(buckets, keep=[7, 4000], max_points=300))
    assert list(lib.sample_rows(buckets[:10], keep=[], max_points=300)) == list(range(10))  # all fit


def test_marked_items_are_the_examples_then_the_most_engaged_titled_items():
    ids = ["a", "b", "c", "d", "e"]
    popularity = np.array([5, 50, 40, 40, 1])
    marked = lib.choose_marked(
        ids, popularity, first=["e", "zz", "e"], titled={"a", "c", "d", "e"}, max_labels=3
    )
    assert marked == [
        4,
        2,
        3,
    ]  # e (an example; zz is not embedded), then c and d (40 each: by row), not a (5)


def test_embedding_map_section_is_capped_and_names_its_items():
    rng = np.random.default_rng(3)
    n = 5000
    ids = [f"i{k}" for k in range(n)]
    popularity = np.arange(n)[::-1].copy()
    buckets = np.where(popularity > 4000, 0, np.where(popularity > 2500, 1, 2))
    section = lib.embedding_map(
        ids,
        rng.normal(size=(n, 16)),
        buckets,
        ("head", "torso", "tail"),
        popularity,
        first=["i4999"],
        titled={"i3", "i10"},
        max_points=600,
        max_labels=3,
    )
    assert len(section["items"]) == len(section["x"]) == len(section["y"]) == len(section["bucket"]) == 600
    assert section["total_items"] == n and section["bucket_names"] == ["head", "torso", "tail"]
    assert section["marked"] == ["i4999", "i3", "i10"]
    assert set(section["marked"]) <= set(section["items"])
    assert all(section["bucket"][k] == buckets[int(item[1:])] for k, item in enumerate(section["items"]))
    assert 0 < sum(section["explained_variance"]) < 1
    with pytest.raises(ValueError, match="5000 ids, 4 vectors"):
        lib.embedding_map(ids, np.zeros((4, 2)), buckets, ("head",), popularity)
