"""What content fingerprints of the input cost: `fingerprint_files` over a local log of a given size,
median of three, so the figure at 20M events (about 412 MB of CSV) can be read off without holding such a log.

    python -m bench.bench_fingerprint --mib 512 [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench.docs_section import report
from components.session_example_gen.input_files import fingerprint_files

START, END = "<!-- bench-fingerprint:start -->", "<!-- bench-fingerprint:end -->"
CSV_BYTES_PER_EVENT = 20.6  # the 20M-event synthetic CSV: 412 MB


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--mib", type=int, default=512, help="size of the log to hash (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help="write the result into docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "events.csv")
        with open(path, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        fingerprint_files([path])  # the first read warms the page cache, as a rerun's would be
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            fingerprint_files([path])
            seconds.append(time.perf_counter() - started)
    per_gib = statistics.median(seconds) / args.mib * 1024
    at_20m = per_gib * 20e6 * CSV_BYTES_PER_EVENT / (1 << 30)
    runs = ", ".join(f"{s:.3f}" for s in seconds)
    text = (
        "## Input fingerprints: sha256 of every local input file\n\n"
        f"`python -m bench.bench_fingerprint --mib {args.mib}`, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, file in the page cache: "
        f"{args.mib} MiB hashed in {runs} s "
        f"(median {statistics.median(seconds):.3f} s, {per_gib:.2f} s per GiB). At 20M events (about "
        f"{20e6 * CSV_BYTES_PER_EVENT / 1e6:.0f} MB of CSV) that is about {at_20m:.1f} s per run, against a "
        "pipeline of tens of minutes; a cold page cache adds the disk's read time. Remote inputs (gs://...) "
        "keep names, sizes and modification times (what their filesystem offers without reading them)."
    )
    return report(text, START, END, args.write)


if __name__ == "__main__":
    raise SystemExit(main())
