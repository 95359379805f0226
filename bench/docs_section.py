"""Benchmarks write their results into their own marked section of docs/BENCHMARKS.md, nothing else."""

from __future__ import annotations

import os

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "BENCHMARKS.md")


def write_section(text: str, start: str, end: str, path: str = BENCHMARKS) -> None:
    """Replaces the text between the `start` and `end` markers (appends markers and text the first time).
    `text` may carry the markers itself (a bench's whole printed report): they are not doubled."""
    text = text.split(start, 1)[-1].split(end, 1)[0]
    with open(path, encoding="utf-8") as f:
        document = f.read()
    section = f"{start}\n{text.strip()}\n{end}"
    if start in document and end in document:
        document = document[: document.index(start)] + section + document[document.index(end) + len(end) :]
    else:
        document = document.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(document)


def report(text: str, start: str, end: str, write: bool) -> int:
    """A bench's last step: prints its section and writes it into docs/BENCHMARKS.md when asked."""
    print(text)
    if write:
        write_section(text, start, end)
    return 0
