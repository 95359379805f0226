"""MovieLens-100K: fetch, verify and cache the default real engagement data set.

Sources, in order:
1. the canonical GroupLens ``ml-100k.zip`` (``ml-100k/u.data`` and ``ml-100k/u.item``);
2. the same 100,000 ratings shipped inside the PyPI wheel ``recbole==1.2.1``
   (``recbole/dataset_example/ml-100k/ml-100k.inter`` and ``ml-100k.item``), fetched with
   ``pip download --no-deps`` and read with :mod:`zipfile`; recbole itself is never installed.

Both are parsed, normalised and verified by :mod:`engagement_data.movielens_parse` into ``ratings.tsv`` and
``titles.tsv`` in ``out_dir``. Files are written atomically and ``SHA256SUMS`` (``sha256sum -c`` format) is
written last, so a directory with a matching ``SHA256SUMS`` is a complete cache. The GroupLens licence allows
downloading, not redistribution: point ``out_dir`` outside the repository or at an ignored path.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from engagement_data.atomic_file import write_atomic
from engagement_data.movielens_parse import (
    MOVIELENS_100K,
    RECBOLE_INTER_MEMBER,
    RECBOLE_ITEM_MEMBER,
    U_DATA_MEMBER,
    U_ITEM_ENCODING,
    U_ITEM_MEMBER,
    Expected,
    MovieLensError,
    Rating,
    Title,
    format_ratings,
    parse_recbole_inter,
    parse_recbole_item,
    parse_u_data,
    parse_u_item,
    sha256_hex,
    verify_movielens,
)
from formats.titles import format_titles

LOGGER = logging.getLogger("pin2vec.data")

CANONICAL_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
WHEEL_SPEC = "recbole==1.2.1"
DEFAULT_TIMEOUT_S = 20.0
PIP_TIMEOUT_S = 300.0

RATINGS_FILE = "ratings.tsv"
TITLES_FILE = "titles.tsv"
SUMS_FILE = "SHA256SUMS"


class SourceUnavailableError(MovieLensError):
    """A source could not be read (network, pip, archive layout)."""


@dataclass(frozen=True)
class MovieLensFiles:
    """The normalised files in the cache directory and where their content came from."""

    ratings: Path
    titles: Path
    source: str


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
    write_atomic(ratings_path, ratings)
    write_atomic(titles_path, titles)
    sums = {RATINGS_FILE: sha256_hex(ratings), TITLES_FILE: sha256_hex(titles)}
    write_atomic(out / SUMS_FILE, format_sha256sums(sums).encode("utf-8"))
    LOGGER.info(
        "wrote MovieLens-100K (%d ratings, %d titles) to %s from %s",
        len(ratings_rows),
        len(title_rows),
        out,
        source,
    )
    return MovieLensFiles(ratings=ratings_path, titles=titles_path, source=source)
