"""bench-serving's data and index version: seeded synthetic embeddings and the ScaNN index built by the
indexer's own code, published like the RelatedPusher does and cached under --work by its settings.

The build time and recall are the bench's own figures: they go to BUILD_FILE beside the cache key, never into
the index's index.json, which only formats.index_files writes (atomically).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np

from bench.progress import log

KEY_FILE = "index_key.json"  # the settings the cached index was built with
BUILD_FILE = "index_build.json"  # {"build_seconds": ..., "recall_at_k": ...} of the cached index


def synthetic_vectors(items: int, dim: int, topics: int, seed: int) -> np.ndarray:
    from components.scann_indexer.index_lib import normalize_rows

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dim), dtype=np.float32)
    vectors = centres[rng.integers(topics, size=items)]
    vectors += rng.standard_normal((items, dim), dtype=np.float32)
    return normalize_rows(vectors)


def item_ids(items: int) -> list[str]:
    return [f"item-{i:07d}" for i in range(items)]


def build_or_load_index(args, vectors):
    """(index version dir, recall, build seconds, settings); cached under --work keyed by the settings."""
    from components.scann_indexer import index_lib
    from formats import serving_layout
    from formats.settings_codec import encode_settings

    settings = index_lib.IndexSettings(
        num_leaves=args.num_leaves,
        num_leaves_to_search=args.leaves_to_search,
        training_sample_size=100_000,
        recall_sample_size=args.queries,
        seed=args.seed,
    )
    key = json.dumps(
        {
            "items": args.items,
            "dim": args.dim,
            "topics": args.topics,
            "seed": args.seed,
            "index": encode_settings(settings),
        },
        sort_keys=True,
    )
    base = os.path.join(args.work, "serving")
    version_dir = os.path.join(base, serving_layout.PIN2VEC_SIMILAR_MODEL, "1")
    key_file = os.path.join(args.work, KEY_FILE)
    build_file = os.path.join(args.work, BUILD_FILE)
    cached = ""
    if os.path.isfile(key_file):
        with open(key_file) as f:
            cached = f.read()
    if not args.rebuild and cached == key and os.path.isfile(build_file):
        with open(build_file) as f:
            build = json.load(f)
        log(f"reusing the index in {version_dir}")
        return version_dir, build["recall_at_k"], build["build_seconds"], settings
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    log(f"building the ScaNN index over {vectors.shape}")
    started = time.perf_counter()
    searcher = index_lib.build_index(vectors, settings)
    build_s = time.perf_counter() - started
    recall = index_lib.measure_recall(searcher, vectors, settings)
    staging = os.path.join(args.work, "staging")
    index_lib.save_index(searcher, item_ids(args.items), vectors, staging, settings, recall)
    serving_layout.publish_directory(staging, os.path.join(base, serving_layout.PIN2VEC_SIMILAR_MODEL), 1)
    shutil.rmtree(staging)
    with open(build_file, "w") as f:
        json.dump({"build_seconds": build_s, "recall_at_k": recall}, f)
    with open(key_file, "w") as f:  # last: a key file means the index and its build figures are complete
        f.write(key)
    return version_dir, recall, build_s, settings
