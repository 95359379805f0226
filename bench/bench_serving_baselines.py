"""bench-serving's in-process figures: exact numpy, ScaNN and faiss IVF-Flat on the same vectors and queries,
and the gRPC servicer's Predict called directly (no gRPC) to price the request's own work."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from bench.latency import percentiles
from bench.progress import log


def time_single(search, queries, repeats=1) -> dict[str, float]:
    latencies = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        latencies.append(time.perf_counter() - started)
    return percentiles(latencies)


def time_batched(search_batch, queries, batch=64) -> float:
    started = time.perf_counter()
    for start in range(0, len(queries), batch):
        search_batch(queries[start : start + batch])
    return len(queries) / (time.perf_counter() - started)


def baselines(args, vectors, version_dir, build_s: float | None) -> list[dict]:
    """numpy brute force, ScaNN (the published version, built in `build_s`) and faiss IVF-Flat with the
    smallest nprobe reaching ScaNN's recall: recall@10 against exact search, single and batched timings."""
    import faiss

    from components.scann_indexer import index_lib
    from formats import index_files

    rng = np.random.default_rng(args.seed + 1)
    rows = rng.choice(len(vectors), size=args.queries, replace=False)
    queries = np.ascontiguousarray(vectors[rows])
    single = queries[: min(200, len(queries))]
    log("exact neighbours (numpy) for recall")
    exact = index_lib.exact_neighbors(vectors, queries, 10)
    results = []

    def numpy_search(batch):
        scores = batch @ vectors.T
        top = np.argpartition(-scores, 9, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)

    log("numpy brute force")
    results.append(
        {
            "method": "numpy brute force (exact)",
            "recall": 1.0,
            "single": time_single(lambda q: numpy_search(q[None, :]), single[:50]),
            "batched_qps": time_batched(numpy_search, queries[:256]),
            "build_s": 0.0,
        }
    )

    searcher, _, _, metadata = index_files.load_index(version_dir)
    log("ScaNN in-process")
    approx, _ = searcher.search_batched(queries, final_num_neighbors=10)
    results.append(
        {
            "method": (
                f"ScaNN tree {metadata['num_leaves']} leaves, {metadata['num_leaves_to_search']} searched, "
                f"AH + exact reorder of {metadata['reorder_num_neighbors']}"
            ),
            "recall": index_lib.recall_at_k(approx, exact),
            "single": time_single(lambda q: searcher.search(q, final_num_neighbors=10), single),
            "batched_qps": time_batched(
                lambda b: searcher.search_batched(b, final_num_neighbors=10), queries
            ),
            "build_s": build_s,
        }
    )

    log("faiss IVF-Flat")
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(args.dim)
    ivf = faiss.IndexIVFFlat(quantizer, args.dim, args.num_leaves, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors[rng.choice(len(vectors), size=min(100_000, len(vectors)), replace=False)])
    ivf.add(vectors)
    build_s = time.perf_counter() - started
    target = results[-1]["recall"]
    for nprobe in (1, 2, 4, 6, 8, 10, 15, 20, 30, 50):
        ivf.nprobe = nprobe
        _, found = ivf.search(queries, 10)
        recall = index_lib.recall_at_k(found, exact)
        if recall >= min(target, 0.95):
            break
    results.append(
        {
            "method": f"faiss IVF-Flat {args.num_leaves} lists, nprobe {nprobe} "
            f"({faiss.omp_get_max_threads()} threads)",
            "recall": recall,
            "single": time_single(lambda q: ivf.search(q[None, :], 10), single),
            "batched_qps": time_batched(lambda b: ivf.search(b, 10), queries),
            "build_s": build_s,
        }
    )
    return results


def inprocess_predict(base: str, requests: list[bytes], passes: int = 3) -> dict[str, float]:
    """The gRPC servicer's Predict called in this process (no gRPC; access log off) on the load generator's
    requests: as sent, which the servable answers straight from their TensorProtos, and with an output_filter
    naming every output, which sends the same request down the general path (decode to arrays, check,
    submit, encode). CPU microseconds per request, median of `passes`."""
    from tensorflow_serving.apis import predict_pb2

    from formats import serving_layout
    from serving.grpc_server import PredictionServicer
    from serving.model_registry import ModelRegistry
    from serving.predict import RequestLimits
    from serving.related_model import RelatedLoader

    class Context:
        def time_remaining(self):
            return None

        def peer(self):
            return "in-process"

    direct = [predict_pb2.PredictRequest.FromString(request) for request in requests]
    general = [predict_pb2.PredictRequest.FromString(request) for request in requests]
    for request in general:
        request.output_filter.extend(["related_ids", "scores", "distances", "in_vocabulary", "source"])
    # `related`, the name clients call, answering from the index as `pin2vec serve` would.
    similar = serving_layout.PIN2VEC_SIMILAR_MODEL
    registry = ModelRegistry(
        base,
        [RelatedLoader(similar)],
        keep_versions=1,
        aliases={serving_layout.DEFAULT_MODEL: lambda: similar},
    )
    registry.start(3600.0)
    servicer, context = PredictionServicer(registry, RequestLimits()), Context()

    async def answer_all(batch):
        return [await servicer.Predict(request, context) for request in batch]

    try:
        timings: dict[str, list[float]] = {"direct_us": [], "general_us": []}
        for _ in range(passes):
            for label, batch in (("direct_us", direct), ("general_us", general)):
                started = time.process_time()
                answers = asyncio.run(answer_all(batch))
                timings[label].append((time.process_time() - started) / len(batch) * 1e6)
                if any(len(a.outputs["related_ids"].string_val) != 10 for a in answers):
                    raise RuntimeError(f"an in-process answer ({label}) without 10 related ids")
    finally:
        registry.stop()
    return {label: float(np.median(values)) for label, values in timings.items()}
