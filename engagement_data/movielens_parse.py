"""MovieLens-100K: parse both sources, normalise them to one layout and verify it; pure functions.

The two sources (see :mod:`engagement_data.movielens_fetch` for how they are fetched):
- GroupLens ``ml-100k/u.data`` (user, item, rating, timestamp; tab-separated, no header) and
  ``ml-100k/u.item`` (``id|title (year)|...``, latin-1);
- recbole's ``ml-100k.inter`` and ``ml-100k.item`` (typed headers; titles split from their year).

Both normalise to the same bytes:
- ``ratings.tsv``: header ``user_id item_id rating timestamp`` (tab-separated), one row per rating in the
  source's order, integers only;
- ``titles.tsv`` (:mod:`formats.titles`): header ``item_id title``, titles with their year as in ``u.item``.

:func:`verify_movielens` checks the normalised content against the expected counts and ratings SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from formats.titles import TITLES_HEADER

# SHA-256 of the normalised ratings.tsv (header included), computed from the recbole==1.2.1 wheel;
# the canonical u.data normalises to the same bytes.
EXPECTED_RATINGS_SHA256 = "ecb4025ec09d52830e65854de08fd07a79ff7bb9201f7067d753c2f0516e5674"
EXPECTED_ROWS = 100_000
EXPECTED_USERS = 943
EXPECTED_ITEMS = 1_682

RATINGS_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
RATINGS_HEADER = "\t".join(RATINGS_COLUMNS)

U_DATA_MEMBER = "ml-100k/u.data"
U_ITEM_MEMBER = "ml-100k/u.item"
U_ITEM_ENCODING = "latin-1"
RECBOLE_INTER_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
RECBOLE_ITEM_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.item"
RECBOLE_INTER_COLUMNS = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")
RECBOLE_ITEM_COLUMNS = ("item_id:token", "movie_title:token_seq", "release_year:token")
# recbole writes the one title-less movie (u.item 267 "unknown") as title and year "unkonwn" [sic].
_RECBOLE_MISSING = frozenset({"", "unknown", "unkonwn"})

Rating = tuple[int, int, int, int]
Title = tuple[int, str]


class MovieLensError(RuntimeError):
    """Base class of the errors raised while fetching MovieLens."""


class DataVerificationError(MovieLensError):
    """The normalised data does not have the expected counts or layout."""


class ChecksumMismatchError(DataVerificationError):
    """The normalised ratings do not hash to the expected SHA-256."""


@dataclass(frozen=True)
class Expected:
    """What a verified data set must look like."""

    rows: int
    users: int
    items: int
    ratings_sha256: str


MOVIELENS_100K = Expected(EXPECTED_ROWS, EXPECTED_USERS, EXPECTED_ITEMS, EXPECTED_RATINGS_SHA256)


# ----------------------------------------------------------------------------------------------- parsing


def _to_int(value: str, *, where: str, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise ValueError(f"{where}: column {column!r} must be an integer, got {value!r}")
    return int(number)


def _data_lines(text: str) -> Iterable[tuple[int, str]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield lineno, line


def _parse_ratings(lines: Iterable[tuple[int, str]], source: str) -> list[Rating]:
    rows: list[Rating] = []
    for lineno, line in lines:
        fields = line.split("\t")
        where = f"{source} line {lineno}"
        if len(fields) != len(RATINGS_COLUMNS):
            raise ValueError(f"{where}: expected {len(RATINGS_COLUMNS)} tab-separated fields, got {line!r}")
        user, item, rating, timestamp = (
            _to_int(value.strip(), where=where, column=column)
            for value, column in zip(fields, RATINGS_COLUMNS, strict=True)
        )
        rows.append((user, item, rating, timestamp))
    return rows


def _rows_after_header(
    text: str, expected: Sequence[str], source: str, *, exact: bool
) -> Iterator[tuple[int, str]]:
    """The data lines of a recbole file, once its header is checked."""
    lines = iter(_data_lines(text))
    first = next(lines, None)
    if first is None:
        raise ValueError(f"{source}: empty file")
    _check_header(first[1], expected, source, exact=exact)
    return lines


def _check_header(header: str, expected: Sequence[str], source: str, *, exact: bool) -> None:
    got = tuple(field.strip() for field in header.split("\t"))
    ok = got == tuple(expected) if exact else got[: len(expected)] == tuple(expected)
    if not ok:
        raise ValueError(f"{source}: unexpected header {got!r}; expected {tuple(expected)!r}")


def parse_u_data(text: str, *, source: str = U_DATA_MEMBER) -> list[Rating]:
    """Parses GroupLens ``u.data`` (user, item, rating, timestamp; tab-separated, no header)."""
    return _parse_ratings(_data_lines(text), source)


def parse_u_item(text: str, *, source: str = U_ITEM_MEMBER) -> list[Title]:
    """Parses GroupLens ``u.item`` (``id|title (year)|release date|...``), already decoded from latin-1."""
    titles: list[Title] = []
    for lineno, line in _data_lines(text):
        fields = line.split("|")
        where = f"{source} line {lineno}"
        if len(fields) < 2:
            raise ValueError(f"{where}: expected '|'-separated 'id|title|...', got {line!r}")
        titles.append((_to_int(fields[0].strip(), where=where, column="item_id"), fields[1].strip()))
    return titles


def parse_recbole_inter(text: str, *, source: str = RECBOLE_INTER_MEMBER) -> list[Rating]:
    """Parses recbole's ``ml-100k.inter`` (tab-separated, typed header)."""
    return _parse_ratings(_rows_after_header(text, RECBOLE_INTER_COLUMNS, source, exact=True), source)


def recbole_title(title: str, year: str) -> str:
    """Rebuilds the ``u.item`` title from recbole's split ``movie_title`` and ``release_year``.

    recbole cut the last parenthesised group off the title, so ``f"{title} ({year})"`` restores it, even
    for "Land Before Time III: ... (1995)" + "V". The title-less movie becomes "unknown", as in u.item.
    """
    title, year = title.strip(), year.strip()
    if year in _RECBOLE_MISSING:
        return "unknown" if title in _RECBOLE_MISSING else title
    return f"{title} ({year})"


def parse_recbole_item(text: str, *, source: str = RECBOLE_ITEM_MEMBER) -> list[Title]:
    """Parses recbole's ``ml-100k.item`` into (item id, title with year)."""
    lines = _rows_after_header(text, RECBOLE_ITEM_COLUMNS, source, exact=False)
    titles: list[Title] = []
    for lineno, line in lines:
        fields = line.split("\t")
        where = f"{source} line {lineno}"
        if len(fields) < len(RECBOLE_ITEM_COLUMNS):
            raise ValueError(f"{where}: expected at least {len(RECBOLE_ITEM_COLUMNS)} fields, got {line!r}")
        item = _to_int(fields[0].strip(), where=where, column="item_id")
        titles.append((item, recbole_title(fields[1], fields[2])))
    return titles


# -------------------------------------------------------------------------------------------- formatting


def format_ratings(rows: Iterable[Rating]) -> bytes:
    """The normalised ``ratings.tsv`` content: header, then one tab-separated row per rating, in order."""
    lines = [RATINGS_HEADER]
    lines.extend("\t".join(str(value) for value in row) for row in rows)
    return ("\n".join(lines) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------------------ verification


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_movielens(
    ratings: bytes, titles: bytes, expected: Expected, *, ratings_name: str, titles_name: str
) -> None:
    """Checks normalised ``ratings.tsv``/``titles.tsv`` content against ``expected``.

    Counts (rows, distinct users, distinct items, one title per item, a title for every rated item) are
    checked first, then the ratings SHA-256. Raises :class:`DataVerificationError` (or its subclass
    :class:`ChecksumMismatchError`) naming the file, what was expected and what was found.
    """
    rating_lines = ratings.decode("utf-8").splitlines()
    if not rating_lines or rating_lines[0] != RATINGS_HEADER:
        got = rating_lines[0] if rating_lines else "<empty>"
        raise DataVerificationError(f"{ratings_name}: header {got!r}, expected {RATINGS_HEADER!r}")
    body = rating_lines[1:]
    users: set[str] = set()
    items: set[str] = set()
    for lineno, line in enumerate(body, start=2):
        fields = line.split("\t")
        if len(fields) != len(RATINGS_COLUMNS):
            raise DataVerificationError(
                f"{ratings_name} line {lineno}: expected {len(RATINGS_COLUMNS)} fields, got {line!r}"
            )
        users.add(fields[0])
        items.add(fields[1])
    for what, got, want in (
        ("rows", len(body), expected.rows),
        ("users", len(users), expected.users),
        ("items", len(items), expected.items),
    ):
        if got != want:
            raise DataVerificationError(f"{ratings_name}: {got:,} {what}, expected {want:,}")

    title_lines = titles.decode("utf-8").splitlines()
    if not title_lines or title_lines[0] != TITLES_HEADER:
        got = title_lines[0] if title_lines else "<empty>"
        raise DataVerificationError(f"{titles_name}: header {got!r}, expected {TITLES_HEADER!r}")
    title_ids = {line.split("\t", 1)[0] for line in title_lines[1:]}
    if len(title_lines) - 1 != expected.items or len(title_ids) != expected.items:
        raise DataVerificationError(
            f"{titles_name}: {len(title_lines) - 1:,} rows with {len(title_ids):,} distinct item ids, "
            f"expected {expected.items:,}"
        )
    untitled = sorted(items - title_ids, key=lambda s: (len(s), s))
    if untitled:
        raise DataVerificationError(
            f"{titles_name}: no title for {len(untitled)} rated item(s), e.g. {untitled[:5]}"
        )

    actual = sha256_hex(ratings)
    if actual != expected.ratings_sha256:
        raise ChecksumMismatchError(
            f"checksum mismatch for {ratings_name}: expected sha256 {expected.ratings_sha256}, got {actual}"
        )
