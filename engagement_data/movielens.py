"""MovieLens-100K: fetch, normalise, verify and cache the default real engagement data set.

Sources, in order:
1. the canonical GroupLens ``ml-100k.zip`` (``ml-100k/u.data`` and ``ml-100k/u.item``);
2. the same 100,000 ratings shipped inside the PyPI wheel ``recbole==1.2.1``
   (``recbole/dataset_example/ml-100k/ml-100k.inter`` and ``ml-100k.item``), fetched with
   ``pip download --no-deps`` and read with :mod:`zipfile`; recbole itself is never installed.

Both sources are normalised to the same two files in ``out_dir``:
- ``ratings.tsv``: header ``user_id item_id rating timestamp`` (tab-separated), one row per rating in the
  source's order, integers only;
- ``titles.tsv``: header ``item_id title``, titles with their year as in ``u.item`` ("Toy Story (1995)").

The ratings are checked against :data:`EXPECTED_RATINGS_SHA256` (and the row, user and item counts) before
anything is written; files are written atomically and ``SHA256SUMS`` (``sha256sum -c`` format) is written
last, so a directory with a matching ``SHA256SUMS`` is a complete cache. The GroupLens licence allows
downloading, not redistribution: point ``out_dir`` outside the repository or at an ignored path.

Parsing, formatting and verification are pure functions over text/bytes; only
:func:`fetch_movielens_100k` touches the network and the file system.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from formats.titles import TITLES_HEADER, format_titles

LOGGER = logging.getLogger("pin2vec.data")

CANONICAL_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
WHEEL_SPEC = "recbole==1.2.1"
DEFAULT_TIMEOUT_S = 20.0
PIP_TIMEOUT_S = 300.0

# SHA-256 of the normalised ratings.tsv (header included), computed from the recbole==1.2.1 wheel;
# the canonical u.data normalises to the same bytes.
EXPECTED_RATINGS_SHA256 = "ecb4025ec09d52830e65854de08fd07a79ff7bb9201f7067d753c2f0516e5674"
EXPECTED_ROWS = 100_000
EXPECTED_USERS = 943
EXPECTED_ITEMS = 1_682

RATINGS_FILE = "ratings.tsv"
TITLES_FILE = "titles.tsv"
SUMS_FILE = "SHA256SUMS"
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


class SourceUnavailableError(MovieLensError):
    """A source could not be read (network, pip, archive layout)."""


class DataVerificationError(MovieLensError):
    """The normalised data does not have the expected counts or layout."""


class ChecksumMismatchError(DataVerificationError):
    """The normalised ratings do not hash to the expected SHA-256."""


@dataclass(frozen=True)
class MovieLensFiles:
    """The normalised files in the cache directory and where their content came from."""

    ratings: Path
    titles: Path
    source: str


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


# --------------------------------------------------------------------------------------------- sources


def read_canonical(url: str, timeout_s: float) -> tuple[list[Rating], list[Title]]:
    """Downloads the GroupLens zip (any urllib URL, ``file://`` included) and parses u.data and u.item."""
    LOGGER.info("fetching MovieLens-100K from %s (timeout %.0f s)", url, timeout_s)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            payload = response.read()
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            u_data = archive.read(U_DATA_MEMBER).decode("utf-8")
            u_item = archive.read(U_ITEM_MEMBER).decode(U_ITEM_ENCODING)
    except (OSError, http.client.HTTPException, zipfile.BadZipFile, KeyError, ValueError) as err:
        # URLError, socket timeouts and missing files are OSErrors; KeyError: member missing from the zip;
        # ValueError: an unknown URL scheme or bytes that are not UTF-8.
        raise SourceUnavailableError(f"{url}: {type(err).__name__}: {err}") from err
    return parse_u_data(u_data, source=f"{url}!{U_DATA_MEMBER}"), parse_u_item(
        u_item, source=f"{url}!{U_ITEM_MEMBER}"
    )


def _pip_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The last non-empty line pip printed: its error message, or the exception of a traceback."""
    lines = [line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def read_wheel(wheel_spec: str, *, timeout_s: float = PIP_TIMEOUT_S) -> tuple[list[Rating], list[Title]]:
    """``pip download --no-deps`` the wheel (never installs it) and parses recbole's ml-100k files."""
    with tempfile.TemporaryDirectory(prefix="pin2vec-movielens-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            wheel_spec,
            "-d",
            tmp,
        ]
        LOGGER.info("downloading the %s wheel with pip (not installing it)", wheel_spec)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SourceUnavailableError(f"pip download {wheel_spec}: {err}") from err
        if result.returncode != 0:
            raise SourceUnavailableError(
                f"pip download {wheel_spec} failed (exit {result.returncode}): {_pip_failure(result)}"
            )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise SourceUnavailableError(
                f"pip download {wheel_spec}: expected one .whl in {tmp}, got {[p.name for p in wheels]}"
            )
        wheel = wheels[0]
        try:
            with zipfile.ZipFile(wheel) as archive:
                inter = archive.read(RECBOLE_INTER_MEMBER).decode("utf-8")
                item = archive.read(RECBOLE_ITEM_MEMBER).decode("utf-8")
        except (OSError, zipfile.BadZipFile, KeyError, UnicodeDecodeError) as err:
            raise SourceUnavailableError(f"{wheel.name}: {type(err).__name__}: {err}") from err
    return parse_recbole_inter(inter, source=f"{wheel.name}!{RECBOLE_INTER_MEMBER}"), parse_recbole_item(
        item, source=f"{wheel.name}!{RECBOLE_ITEM_MEMBER}"
    )


# -------------------------------------------------------------------------------------------- the cache


def parse_sha256sums(text: str) -> dict[str, str]:
    """Parses ``sha256sum`` output (``<hex>  <name>`` per line) into ``{name: hex}``."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ValueError(f"not a sha256sum line: {line!r}")
        sums[name.lstrip("*")] = digest.lower()
    return sums


def format_sha256sums(digests: dict[str, str]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in digests.items())


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached(out_dir: Path, expected: Expected) -> MovieLensFiles | None:
    ratings, titles, sums = out_dir / RATINGS_FILE, out_dir / TITLES_FILE, out_dir / SUMS_FILE
    present = [p for p in (ratings, titles, sums) if p.exists()]
    if len(present) < 3:
        if present:
            LOGGER.info(
                "incomplete cache in %s (only %s); fetching again", out_dir, [p.name for p in present]
            )
        return None
    try:
        recorded = parse_sha256sums(sums.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        LOGGER.warning("unreadable %s (%s); fetching again", sums, err)
        return None
    for path in (ratings, titles):
        try:
            actual = _sha256_file(path)
        except OSError as err:
            LOGGER.warning("unreadable cached %s (%s); fetching again", path, err)
            return None
        if recorded.get(path.name) != actual:
            LOGGER.warning(
                "cached %s does not match %s (recorded %s, actual %s); fetching again",
                path,
                sums.name,
                recorded.get(path.name),
                actual,
            )
            return None
    if recorded[RATINGS_FILE] != expected.ratings_sha256:
        LOGGER.warning(
            "cached %s has sha256 %s, expected %s; fetching again",
            ratings,
            recorded[RATINGS_FILE],
            expected.ratings_sha256,
        )
        return None
    LOGGER.info("using cached MovieLens-100K in %s (%s verified)", out_dir, sums.name)
    return MovieLensFiles(ratings=ratings, titles=titles, source="cache")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp creates 0600; these are ordinary data files
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------------- the fetcher


def fetch_movielens_100k(
    out_dir: str | Path,
    *,
    canonical_url: str = CANONICAL_URL,
    wheel_spec: str = WHEEL_SPEC,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> MovieLensFiles:
    """Returns verified MovieLens-100K ``ratings.tsv``/``titles.tsv`` in ``out_dir``, fetching if needed.

    A cache whose ``SHA256SUMS`` matches is returned at once (``source="cache"``). Otherwise the canonical
    zip is tried (``timeout_s`` per network operation); if it cannot be read or does not verify, the
    ``wheel_spec`` wheel is downloaded with pip. ``source`` is ``"canonical:<url>"`` or
    ``"wheel:<spec>"``. Raises :class:`SourceUnavailableError` when neither source can be read and
    :class:`DataVerificationError`/:class:`ChecksumMismatchError` when the wheel's data does not verify.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    out = Path(out_dir)
    expected = MOVIELENS_100K
    cached = _cached(out, expected)
    if cached is not None:
        return cached

    ratings_path, titles_path = out / RATINGS_FILE, out / TITLES_FILE
    try:
        ratings_rows, title_rows = read_canonical(canonical_url, timeout_s)
        ratings, titles = format_ratings(ratings_rows), format_titles(title_rows)
        verify_movielens(
            ratings,
            titles,
            expected,
            ratings_name=f"{ratings_path} (from {canonical_url})",
            titles_name=f"{titles_path} (from {canonical_url})",
        )
        source = f"canonical:{canonical_url}"
    except (MovieLensError, ValueError) as err:
        LOGGER.warning("canonical source not used: %s; falling back to the %s wheel", err, wheel_spec)
        try:
            ratings_rows, title_rows = read_wheel(wheel_spec)
        except SourceUnavailableError as wheel_err:
            raise SourceUnavailableError(
                f"MovieLens-100K is unavailable: canonical source: {err}; wheel: {wheel_err}"
            ) from wheel_err
        ratings, titles = format_ratings(ratings_rows), format_titles(title_rows)
        verify_movielens(
            ratings,
            titles,
            expected,
            ratings_name=f"{ratings_path} (from wheel {wheel_spec})",
            titles_name=f"{titles_path} (from wheel {wheel_spec})",
        )
        source = f"wheel:{wheel_spec}"

    out.mkdir(parents=True, exist_ok=True)
    (out / SUMS_FILE).unlink(missing_ok=True)  # the directory is not a valid cache until SHA256SUMS is back
    _write_atomic(ratings_path, ratings)
    _write_atomic(titles_path, titles)
    sums = {RATINGS_FILE: sha256_hex(ratings), TITLES_FILE: sha256_hex(titles)}
    _write_atomic(out / SUMS_FILE, format_sha256sums(sums).encode("utf-8"))
    LOGGER.info(
        "wrote MovieLens-100K (%d ratings, %d titles) to %s from %s",
        len(ratings_rows),
        len(title_rows),
        out,
        source,
    )
    return MovieLensFiles(ratings=ratings_path, titles=titles_path, source=source)
