"""bench-serving's Markdown report and its section of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import time

from bench.bench_serving_load import REQUEST_POOL

SECTION_START = "<!-- bench_serving:start -->"


SECTION_END = "<!-- bench_serving:end -->"


def _ms(stats: dict, key: str) -> str:
    return f"{stats[key]:.1f}" if key in stats else "n/a"


def grpc_reading(grpc_result: dict, scann: dict) -> str:
    """What the gRPC rows say, from their own numbers: whether the target holds, and if not, why."""
    ours, python, floor = grpc_result["ours"], grpc_result["python"], grpc_result["floor"]
    load = grpc_result["load"]
    cores = os.cpu_count()
    ceiling = cores * 1e6 / (ours["cpu_us"] + ours["client_cpu_us"])
    text = (
        f"Client and server share {cores} cores, so QPS is at most {cores} CPU-seconds / (server + client "
        f"CPU per request) = {cores}e6 / ({ours['cpu_us']:,.0f} + {ours['client_cpu_us']:,.0f} us) = "
        f"{ceiling:,.0f} QPS. `pin2vec serve` receives gRPC calls in C++ (grpc++ threads, no GIL; "
        "serving/native) and answers them from one Python thread: "
        f"{ours['cpu_us']:,.0f} us of server CPU per request, against {python['cpu_us']:,.0f} us on "
        "grpc.aio. "
        f"The floor is one grpc.aio process that does no work: {floor['cpu_us']:,.0f} us per request is "
        "what gRPC in Python costs here before the request's own work (decoding, the ScaNN search at "
        f"{scann['single']['p50'] * 1000:.0f} us p50 in-process, the response tensors, the access line); "
        "on the C++ transport the whole request, that work included, costs "
        f"{ours['cpu_us'] / floor['cpu_us']:.2f}x the floor's CPU. "
        f"The load average (other jobs included) was {load[0]:.1f} before the gRPC rounds and {load[1]:.1f} "
        "after. "
    )
    if ours["qps"] >= 2000:
        return text + "The gRPC target is met. "
    return text + "The gRPC target is not met in this run. "


def grpc_rows(args, grpc_result: dict) -> list[str]:
    ours, more, python = grpc_result["ours"], grpc_result["more_workers"], grpc_result["python"]
    floor = grpc_result["floor"]

    def rounds(figures, key="all_qps"):
        return ", ".join(f"{value:,.0f}" for value in figures[key])

    def qps_cell(figures):
        return (
            f"{figures['qps']:,.0f} QPS (rounds: {rounds(figures)}), "
            f"p50 {_ms(figures['latency'], 'p50')} ms, p99 {_ms(figures['latency'], 'p99')} ms, "
            f"{figures['failures']} failed "
            f"({figures['checked']:,} answers parsed and checked)"
        )

    more_workers = args.grpc_workers + 1
    return [
        f"| gRPC, `pin2vec serve --grpc-workers {args.grpc_workers}` (the C++ transport, the default), "
        f"concurrency {args.grpc_concurrency} "
        f"over {args.grpc_channels} connections, C++ load generator (bench/grpc_load: real PredictRequests "
        f"serialized once, every status checked, the first answers of each round parsed), median of "
        f"{args.grpc_rounds} x {args.grpc_seconds:.0f} s | >= 2,000 QPS | {qps_cell(ours)} |",
        f"| same client, same server with `--grpc-workers {more_workers}`, rounds alternating with the row "
        f"above | - | {qps_cell(more)}; {more_workers / args.grpc_workers:.0f}x the processes give "
        f"{more['qps'] / ours['qps']:.2f}x |",
        f"| same client, same server on grpc.aio: `--grpc-frontend python --grpc-workers 2` (the fastest "
        f"setting before the C++ transport), rounds alternating | - | {qps_cell(python)}; the C++ transport "
        f"gives {ours['qps'] / python['qps']:.2f}x |",
        f"| same client, gRPC floor: one grpc.aio process on uvloop whose Predict does no work (a recorded "
        "response) "
        f"| - | {floor['qps']:,.0f} QPS (rounds: {rounds(floor)}) |",
        f"| server CPU per answered gRPC request, all processes and threads (median of rounds) | - | "
        f"`pin2vec serve` {ours['cpu_us']:,.0f} us (rounds: {rounds(ours, 'all_cpu_us')}), "
        f"{more_workers} workers {more['cpu_us']:,.0f} us, grpc.aio {python['cpu_us']:,.0f} us, "
        f"floor {floor['cpu_us']:,.0f} us |",
        f"| client CPU per answered request (median of rounds) | - | {ours['client_cpu_us']:,.0f} us against "
        f"`pin2vec serve`, {python['client_cpu_us']:,.0f} us against grpc.aio, "
        f"{floor['client_cpu_us']:,.0f} us against the floor |",
    ]


def report(args, recall, build_s, methods, rest, grpc_result, swap, rest_swap, predict_cpu, cpu) -> str:
    numpy_row, scann, faiss_row = methods
    command = (
        "`make bench-serving` (= `make build/grpc_load`, then `.venv/bin/python -m bench.bench_serving "
        "--grpc-load build/grpc_load --write-docs`)"
    )
    data = (
        f"{args.items:,} items x {args.dim}-d, synthetic and seeded (seed {args.seed}: {args.topics:,} "
        "Gaussian topic centres + unit noise, normalized)"
    )
    lines = [
        SECTION_START,
        "## Serving: `pin2vec serve` related items (bench/bench_serving.py)",
        "",
        f"Command: {command}. Machine: {cpu}. Measured {time.strftime('%Y-%m-%d')}. {data}. Client and "
        "server share the machine's 2 cores (and other people's jobs), so the server figures are "
        "conservative.",
        "",
        "### Index and baselines (same vectors, same 1,000 queries, in-process, k=10)",
        "",
        "| method | recall@10 vs exact | single query p50 / p99 (ms) | batched (64) queries/s | build (s) |",
        "|---|---|---|---|---|",
    ]
    for m in methods:
        build = "-" if m["build_s"] is None else f"{m['build_s']:.0f}"
        single = f"{m['single']['p50']:.2f} / {m['single']['p99']:.2f}"
        lines.append(f"| {m['method']} | {m['recall']:.3f} | {single} | {m['batched_qps']:,.0f} | {build} |")
    single_vs_numpy = numpy_row["single"]["p50"] / scann["single"]["p50"]
    batched_vs_numpy = scann["batched_qps"] / numpy_row["batched_qps"]
    single_vs_faiss = faiss_row["single"]["p50"] / scann["single"]["p50"]
    batched_vs_faiss = scann["batched_qps"] / faiss_row["batched_qps"]
    lines += [
        "",
        f"ScaNN vs numpy brute force: {single_vs_numpy:.0f}x faster per single query (p50), "
        f"{batched_vs_numpy:.0f}x batched. Vs faiss IVF-Flat at recall {faiss_row['recall']:.3f}: "
        f"{single_vs_faiss:.1f}x (single), {batched_vs_faiss:.1f}x (batched). The indexer's own recall@10 "
        f"check on its sample: {recall:.3f}.",
        "",
        "### Endpoint (`related`, k=10, one id per request)",
        "",
        "| measurement | target | result |",
        "|---|---|---|",
        f"| index recall@10 vs exact | >= 0.95 | {recall:.3f} |",
        f"| REST, concurrency 1, {rest['requests']:,} requests: p50 / p90 / p99 / max | p99 <= 10 ms | "
        f"{rest['p50']:.2f} / {rest['p90']:.2f} / {rest['p99']:.2f} / {rest['max']:.2f} ms, "
        f"{rest['failures']} failed |",
        *grpc_rows(args, grpc_result),
        *(
            f"| REST concurrency 1 while a version is published and swapped in, `--grpc-workers {workers}` "
            f"({result['requests']:,} requests): p99 before / rename to 1 s after the switch / after "
            f"| 0 failed, p99 <= 10 ms | {_ms(result['before'], 'p99')} / {_ms(result['during'], 'p99')} / "
            f"{_ms(result['after'], 'p99')} ms (max during: {_ms(result['during'], 'max')} ms), "
            f"{result['failures']} failed; switched {result['switch_s']:.1f} s after the rename |"
            for workers, result in rest_swap.items()
        ),
        f"| hot swap of version 2 under gRPC load (grpc.aio client, concurrency 16 over "
        f"{args.grpc_channels} connections, {args.swap_seconds:.0f} s, every answer checked) | 0 failed | "
        f"{swap['failures']} failed of {swap['requests']:,}; answered by versions {swap['served_by']}"
        f"{'' if 2 in swap['served_by'] else ' (**version 2 was never served: no swap was measured**)'}; "
        f"CPU seconds per server process {' / '.join(f'{c:.1f}' for c in swap['cpu_s_by_process'])} |",
        "",
        f"Hot swap detail: publishing version 2 (publish_directory: copy to a dot-temp directory, "
        f"rename) took "
        f"{swap['copy_s']:.1f} s; the first answer from version 2 came "
        f"{swap['switch_s'] if swap['switch_s'] is not None else float('nan'):.1f} s after the rename "
        f"(poll + "
        "load on the poller thread). Latency p50 / p99 (ms): before the publish "
        f"{_ms(swap['before'], 'p50')} / {_ms(swap['before'], 'p99')}; from the rename to 1 s after "
        f"the switch "
        f"{_ms(swap['during'], 'p50')} / {_ms(swap['during'], 'p99')}; after {_ms(swap['after'], 'p50')} / "
        f"{_ms(swap['after'], 'p99')} ({swap['qps']:,.0f} QPS overall).",
        "",
        f"In-process Predict (the gRPC servicer called directly, no gRPC, access log off; the load "
        f"generator's {REQUEST_POOL:,} requests, median of 3 passes): the usual request (one id, one k) "
        f"answered straight from its TensorProtos costs {predict_cpu['direct_us']:.0f} us of CPU, the same "
        f"requests down the general path (an output_filter naming every output) "
        f"{predict_cpu['general_us']:.0f} us ({predict_cpu['general_us'] / predict_cpu['direct_us']:.2f}x).",
        "",
        "Reading the figures. " + grpc_reading(grpc_result, scann),
        "The synthetic data has 1,000 topics, "
        "which suits a 1,000-list IVF: faiss needs only nprobe 1 here, so ScaNN's lead over it is small on "
        "this data. During a swap, ScaNN's loader holds the GIL for up to ~1-2 s while it deserializes a "
        "1M-item index, so a few requests wait that long once (the max column); none fail. "
        "Every process of a multi-worker server loads a pushed version at the same time: on 2 cores, the "
        "requests answered during a swap share the cores with two loads instead of one.",
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"
