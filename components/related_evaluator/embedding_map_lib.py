"""A 2-D map of the embedding space for the run report (the Pin2Vec post's Figure 5): item embeddings
projected on their first two principal components, colored by popularity bucket, a few items named.

Pure numpy: a PCA is an SVD of a few thousand rows, so no sklearn or UMAP. A deterministic sample keeps the
report small whatever the vocabulary size, and the same log gives the same picture.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

MAX_POINTS = 2000
"""Points drawn at most: about 100 kB of inline SVG, enough to see clusters, small enough to open anywhere."""

MAX_LABELS = 12
"""Items named on the map: more labels overlap and hide the points."""

SEED = 0
"""The sample's random seed: the same vocabulary always gives the same map."""

DECIMALS = 4  # coordinates kept in evaluation.json: far below a pixel of the chart


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[n, d] -> ([n, 2] coordinates on the first two principal components, each one's share of the variance).

    Each component's sign is fixed (its largest loading positive), so a rerun never mirrors the map. With
    fewer than two components (one row, one dimension, identical rows) the missing axis is 0.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0:
        raise ValueError(f"pca_2d needs a non-empty [items, dimensions] array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("pca_2d: the embeddings hold NaN or infinite values")
    centred = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2].copy()
    strongest = np.abs(components).argmax(axis=1)
    signs = np.sign(components[np.arange(len(components)), strongest])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    coords = np.zeros((len(x), 2))
    coords[:, : len(components)] = centred @ components.T
    variance = singular**2
    shares = np.zeros(2)
    if variance.sum() > 0:
        shares[: len(components)] = variance[: len(components)] / variance.sum()
    return coords, shares


def sample_rows(
    buckets: np.ndarray, keep: Sequence[int], max_points: int = MAX_POINTS, seed: int = SEED
) -> np.ndarray:
    """Sorted rows to draw: every row when they fit; otherwise every `keep` row, then the same number from
    each popularity bucket (a smaller bucket's unused share goes to the others), drawn with a fixed seed.

    Drawing per bucket and not uniformly keeps the head visible: by item count nearly every item is tail."""
    buckets = np.asarray(buckets)
    if len(buckets) <= max_points:
        return np.arange(len(buckets))
    keep = np.unique(np.asarray(keep, dtype=np.int64))[:max_points]
    rng = np.random.default_rng(seed)
    members = {
        int(b): np.setdiff1d(np.flatnonzero(buckets == b), keep, assume_unique=True)
        for b in np.unique(buckets)
    }
    left, chosen = max_points - len(keep), [keep]
    for position, bucket in enumerate(sorted(members, key=lambda b: (len(members[b]), b))):
        take = min(len(members[bucket]), left // (len(members) - position))
        chosen.append(rng.choice(members[bucket], size=take, replace=False))
        left -= take
    return np.sort(np.concatenate(chosen))


def choose_marked(
    item_ids: Sequence[str],
    popularity: np.ndarray,
    first: Sequence[str],
    titled: Collection[str],
    max_labels: int = MAX_LABELS,
) -> list[int]:
    """Rows to name on the map: the `first` items (the report's examples) that are embedded, then the most
    engaged titled items (ties by row), up to `max_labels`."""
    row_of = {item: row for row, item in enumerate(item_ids)}
    marked = list(dict.fromkeys(row_of[item] for item in first if item in row_of))[:max_labels]
    titled_rows = np.array([row_of[item] for item in titled if item in row_of], dtype=np.int64)
    if len(titled_rows) and len(marked) < max_labels:
        order = titled_rows[np.lexsort((titled_rows, -np.asarray(popularity)[titled_rows]))]
        taken = set(marked)
        marked += [int(row) for row in order if row not in taken][: max_labels - len(marked)]
    return marked


def embedding_map(
    item_ids: Sequence[str],
    vectors: np.ndarray,
    buckets: np.ndarray,
    bucket_names: Sequence[str],
    popularity: np.ndarray,
    first: Sequence[str] = (),
    titled: Collection[str] = (),
    max_points: int = MAX_POINTS,
    max_labels: int = MAX_LABELS,
    seed: int = SEED,
) -> dict:
    """The `embedding_map` section of evaluation.json: a sample of items (row i of `vectors` is `item_ids[i]`,
    in bucket `buckets[i]`, an index into `bucket_names`) with their 2-D coordinates, the items to name, and
    how much of the variance the two axes hold."""
    if len(item_ids) != len(vectors) or len(buckets) != len(vectors) or len(popularity) != len(vectors):
        raise ValueError(
            f"embedding_map: {len(item_ids)} ids, {len(vectors)} vectors, {len(buckets)} buckets and "
            f"{len(popularity)} popularities; expected one of each per item"
        )
    marked = choose_marked(item_ids, popularity, first, titled, max_labels)
    rows = sample_rows(buckets, marked, max_points, seed)
    coords, shares = pca_2d(np.asarray(vectors)[rows])
    return {
        "items": [str(item_ids[row]) for row in rows],
        "x": [round(float(v), DECIMALS) for v in coords[:, 0]],
        "y": [round(float(v), DECIMALS) for v in coords[:, 1]],
        "bucket": [int(buckets[row]) for row in rows],
        "bucket_names": list(bucket_names),
        "marked": [str(item_ids[row]) for row in marked],
        "explained_variance": [round(float(s), DECIMALS) for s in shares],
        "total_items": len(item_ids),
    }
