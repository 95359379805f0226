"""`make bench-quick`: this project's trainer vs gensim Word2Vec on the same synthetic sessions and pairs.

One run: generate a seeded synthetic log (engagement_data.synthetic), cut it into sessions, then train
(a) this project's Keras model (trainer_module.model, the Trainer's own code, driven without TFX) and
(b) gensim 4.4 Word2Vec (skip-gram, negative=64, same dimension, workers=2) for the same epochs, `--repeats`
times each, alternating. Prints per-repeat and median training pairs/s, the line
`training pairs/s vs gensim: <ratio>x` (ratio of medians) and both models' planted recall@k.

How pairs are counted: gensim trains every (center, context) pair within `--window` positions inside a
session (fixed window: shrink_windows=False; sample=0, min_count=1, so nothing is dropped or thinned).
Our trainer is fed exactly that multiset of pairs. pairs/s = pairs per epoch * epochs / training seconds
(gensim: `Word2Vec.train`; ours: `Model.fit` incl. tracing and the input pipeline). Vocabulary building,
session cutting and recall are not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from bench.bench_quick_data import count_gensim_pairs, load_sessions, skipgram_pairs
from bench.bench_quick_recall import recall_of_vectors
from engagement_data.synthetic import SyntheticSettings, generate, read_ground_truth


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=4, help="context positions on each side (pipeline: 4)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--negatives", type=int, default=64)
    p.add_argument("--min-count-eval", type=int, default=5, help="items scored for recall: this many events")
    p.add_argument("--trainer", default="{}", help="JSON TrainerSettings overrides for our model")
    p.add_argument("--work-dir", default=None, help="parent of the run's fresh temporary directory")
    p.add_argument("--skip-gensim", action="store_true")
    p.add_argument("--json-out", default=None, help="also write the results as JSON here")
    return p.parse_args(argv)


def train_gensim(sentences, args, seed):
    from gensim.models import Word2Vec

    model = Word2Vec(
        vector_size=args.dim,
        window=args.window,
        sg=1,
        negative=args.negatives,
        ns_exponent=0.75,
        sample=0,
        min_count=1,
        workers=2,
        shrink_windows=False,
        seed=seed,
    )
    model.build_vocab(sentences)
    started = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=args.epochs)
    return time.perf_counter() - started, model


def train_ours(sessions, pair_files, args, settings_overrides, seed, work_dir):
    import dataclasses

    from bench.bench_quick_input import pair_dataset
    from trainer_module.model import TrainerSettings, build_model, write_sampler_file

    settings = dataclasses.replace(
        TrainerSettings(embedding_dim=args.dim, num_negatives=args.negatives, epochs=args.epochs, seed=seed),
        **settings_overrides,
    )
    vocabulary = len(sessions.item_ids)
    sampler = write_sampler_file(np.append(sessions.counts, 1), os.path.join(work_dir, "sampler.txt"))
    model = build_model(vocabulary + 1, settings, sampler)
    dataset = pair_dataset(pair_files, settings, vocabulary, os.path.join(work_dir, f"input-cache-{seed}"))
    started = time.perf_counter()
    model.fit(dataset, epochs=settings.epochs, verbose=0)
    return time.perf_counter() - started, model, settings


def warm_up_tensorflow(sessions, pair_files, args, work_dir) -> None:
    """One untimed step of a throw-away model: TensorFlow's one-off process start-up (kernel registration,
    thread pools, first graph optimisation) is not training. Every timed repeat still builds, traces and
    compiles its own model."""
    import dataclasses

    from bench.bench_quick_input import pair_dataset
    from trainer_module.model import TrainerSettings, build_model

    settings = dataclasses.replace(TrainerSettings(), embedding_dim=args.dim, num_negatives=args.negatives)
    model = build_model(len(sessions.item_ids) + 1, settings)
    model.fit(pair_dataset(pair_files, settings, len(sessions.item_ids), None).take(2), verbose=0)


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = json.loads(args.trainer)
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix="pin2vec-bench-quick-", dir=args.work_dir)
    t0 = time.perf_counter()
    log = generate(SyntheticSettings(items=args.items, events=args.events, seed=args.seed), work_dir)
    sessions = load_sessions(log.events_dir)
    truth = read_ground_truth(log.ground_truth)
    lengths = np.diff(sessions.offsets)
    pairs_per_epoch = count_gensim_pairs(lengths, args.window)
    centers, contexts = skipgram_pairs(sessions, args.window)
    assert len(centers) == pairs_per_epoch, (len(centers), pairs_per_epoch)
    eligible = np.flatnonzero(sessions.counts >= args.min_count_eval)
    k = len(next(iter(truth.values())))
    print(
        f"data: {log.events:,} events, {len(lengths):,} sessions, {len(sessions.item_ids):,} items "
        f"({len(eligible):,} with >= {args.min_count_eval} events are scored), "
        f"{pairs_per_epoch:,} pairs/epoch, window {args.window}, {args.epochs} epochs; "
        f"prepared in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    sentences = sessions.as_sentences()
    from bench.bench_quick_input import write_pair_shards

    pair_files = write_pair_shards(centers, contexts, work_dir)
    warm_up_tensorflow(sessions, pair_files, args, work_dir)
    results = {"ours": [], "gensim": []}
    recalls = {}
    for repeat in range(args.repeats):
        seconds, model, settings = train_ours(
            sessions, pair_files, args, overrides, args.seed + repeat, work_dir
        )
        results["ours"].append(pairs_per_epoch * args.epochs / seconds)
        print(f"  ours   repeat {repeat}: {seconds:7.1f} s, {results['ours'][-1]:12,.0f} pairs/s", flush=True)
        if repeat == 0:
            vectors = model.item_embeddings().numpy()[: len(sessions.item_ids)]
            recalls["ours"] = recall_of_vectors(vectors, sessions.item_ids, eligible, truth, k)
        if args.skip_gensim:
            continue
        seconds, gmodel = train_gensim(sentences, args, args.seed + repeat + 1)
        results["gensim"].append(pairs_per_epoch * args.epochs / seconds)
        print(
            f"  gensim repeat {repeat}: {seconds:7.1f} s, {results['gensim'][-1]:12,.0f} pairs/s", flush=True
        )
        if repeat == 0:
            vectors = np.stack([gmodel.wv[i] for i in sessions.item_ids])
            recalls["gensim"] = recall_of_vectors(vectors, sessions.item_ids, eligible, truth, k)
    medians = {name: statistics.median(v) for name, v in results.items() if v}
    print(f"ours:   {settings}")
    print(
        f"median pairs/s: ours {medians['ours']:,.0f}"
        + (f", gensim {medians['gensim']:,.0f}" if "gensim" in medians else "")
    )
    print(f"planted recall@{k}: " + ", ".join(f"{n} {r:.3f}" for n, r in recalls.items()))
    if "gensim" in medians:
        print(f"training pairs/s vs gensim: {medians['ours'] / medians['gensim']:.2f}x")
    shutil.rmtree(work_dir, ignore_errors=True)  # the log, pair shards and input caches of this run
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(
                {
                    "argv": sys.argv,
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "pairs_per_epoch": pairs_per_epoch,
                    "pairs_per_s": results,
                    "medians": medians,
                    "recall_at_k": recalls,
                    "k": k,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
