"""titles.tsv: item id -> display title, for reports, `pin2vec related` and exports. UTF-8, tab-separated,
header `item_id<TAB>title`; ids are strings, as in the logs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

TITLES_COLUMNS = ("item_id", "title")
TITLES_HEADER = "\t".join(TITLES_COLUMNS)


def format_titles(rows: Iterable[tuple[object, str]]) -> bytes:
    """The normalised ``titles.tsv`` content (UTF-8): header, then ``item_id<TAB>title`` per item."""
    lines = [TITLES_HEADER]
    for item, title in rows:
        if any(ch in title for ch in "\t\r\n"):
            raise ValueError(f"title of item {item} contains a tab or a line break: {title!r}")
        lines.append(f"{item}\t{title}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def load_titles(path: str | Path) -> dict[str, str]:
    """Reads a normalised ``titles.tsv`` into ``{item_id: title}`` (ids as strings, like the logs)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty file; expected header {TITLES_HEADER!r}")
    got = tuple(field.strip() for field in lines[0].split("\t"))
    if got != TITLES_COLUMNS:
        raise ValueError(f"{path}: unexpected header {got!r}; expected {TITLES_COLUMNS!r}")
    titles: dict[str, str] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        item, sep, title = line.partition("\t")
        if not sep or not item:
            raise ValueError(f"{path} line {lineno}: expected 'item_id<TAB>title', got {line!r}")
        if item in titles:
            raise ValueError(f"{path} line {lineno}: duplicate item_id {item!r}")
        titles[item] = title
    return titles
