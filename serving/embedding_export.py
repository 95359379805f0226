"""`pin2vec export-embeddings`: the pushed item vectors as word2vec text or TensorBoard projector TSV files.

The pushed `related` index directory already holds every item id and the vector it was indexed with
(unit length: cosine similarity is their dot product), so exporting needs neither TensorFlow nor the model.

- word2vec text format (gensim's `KeyedVectors.load_word2vec_format`): a header line "<count> <dim>", then one
  line "<id> v1 v2 ..." per item. The format separates fields by whitespace, so ids containing whitespace are
  refused rather than silently split.
- TensorBoard embedding projector ("Load" on projector.tensorflow.org, or a TensorBoard log directory):
  `vectors.tsv` (tab-separated floats, no header) and `metadata.tsv` (one id per line, or a header row
  "item<TAB>title<TAB>popularity" when titles or popularity are known: the projector wants a header exactly
  when there is more than one column).

Files are written to a temporary name beside the target and renamed into place, so a reader never sees half
a file.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from formats import candidate_table, index_files, serving_layout
from formats.index_searcher import latest_version_dir

FORMATS = ("word2vec", "tsv")
VECTORS_TSV = "vectors.tsv"
METADATA_TSV = "metadata.tsv"
METADATA_HEADER = ("item", "title", "popularity")
# float32 needs 9 significant digits to round-trip exactly.
_FLOAT_FORMAT = "%.9g"
_WHITESPACE = re.compile(r"\s")
_TSV_BREAKING = re.compile(r"[\t\r\n]")
# A --out ending like this is a file-name prefix (PREFIXvectors.tsv), anything else a directory.
_PREFIX_ENDINGS = ("_", "-", ".")
# Where the pipeline writes the co-occurrence candidate table (its popularity is the engagement signal).
_COOCCURRENCE_TABLES = os.path.join("pipeline", "CooccurrenceCandidates", "candidates", "*")


@dataclass(frozen=True)
class ItemVectors:
    """Item ids (row order) and their vectors, from one pushed index version."""

    item_ids: list[str]
    vectors: np.ndarray  # float32 [len(item_ids), dim]
    source: str  # the index directory they came from


def load_pushed_vectors(serving_dir: str) -> ItemVectors:
    """The latest complete version under <serving_dir>/pin2vec_similar (the hidden layers), as stored by the
    ScannIndexer."""
    base = os.path.join(serving_dir, serving_layout.PIN2VEC_SIMILAR_MODEL)
    directory = latest_version_dir(base)
    if directory is None:
        raise FileNotFoundError(
            f"no complete pushed index under {base}; run `pin2vec run` first (or check that its last run "
            "was pushed)"
        )
    return read_index_vectors(directory)


def read_index_vectors(directory: str) -> ItemVectors:
    """Ids and vectors of a `save_index` directory, without loading the ScaNN searcher."""
    item_ids, vectors, _ = index_files.load_vectors(directory)
    return ItemVectors(item_ids, np.asarray(vectors, dtype=np.float32), directory)


def check_word2vec_ids(item_ids: Iterable[str]) -> None:
    """word2vec text splits on whitespace (an id holding any would come back as several fields) and gensim
    decodes it as UTF-8."""
    for row, item_id in enumerate(item_ids):
        if not item_id or _WHITESPACE.search(item_id):
            raise ValueError(
                f"item id {item_id!r} (row {row}) contains whitespace or is empty: the word2vec text format "
                "separates fields by whitespace, so it cannot hold this id; use --format tsv instead"
            )
        try:
            item_id.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"item id {item_id!r} (row {row}) is not valid UTF-8 (the log held undecodable bytes): "
                "gensim reads word2vec text as UTF-8; use --format tsv instead"
            ) from None


def word2vec_lines(item_ids: Sequence[str], vectors: np.ndarray) -> Iterator[str]:
    """The word2vec text format, line by line (newline included)."""
    vectors = _check_vectors(item_ids, vectors)
    check_word2vec_ids(item_ids)
    row_format = " ".join([_FLOAT_FORMAT] * vectors.shape[1])
    yield f"{vectors.shape[0]} {vectors.shape[1]}\n"
    for item_id, row in zip(item_ids, vectors, strict=True):
        yield f"{item_id} {row_format % tuple(row.tolist())}\n"


def projector_vector_lines(vectors: np.ndarray) -> Iterator[str]:
    """vectors.tsv: one row of tab-separated floats per item, no header."""
    row_format = "\t".join([_FLOAT_FORMAT] * vectors.shape[1])
    for row in vectors:
        yield row_format % tuple(row.tolist()) + "\n"


def _tsv_field(value: str) -> str:
    """Tabs and line breaks inside a title would shift columns or rows: they become spaces."""
    return _TSV_BREAKING.sub(" ", value)


def projector_metadata_lines(
    item_ids: Sequence[str],
    titles: Mapping[str, str] | None = None,
    popularity: Mapping[str, int] | None = None,
) -> Iterator[str]:
    """metadata.tsv: ids only (no header: the projector reads one column headerless), or a header and
    item/title/popularity columns when either is known (empty where an item has none)."""
    for row, item_id in enumerate(item_ids):
        if _TSV_BREAKING.search(item_id):
            raise ValueError(
                f"item id {item_id!r} (row {row}) contains a tab or line break, which the projector's "
                "metadata.tsv cannot hold"
            )
    if not titles and not popularity:
        yield from (f"{item_id}\n" for item_id in item_ids)
        return
    titles, popularity = titles or {}, popularity or {}
    yield "\t".join(METADATA_HEADER) + "\n"
    for item_id in item_ids:
        count = popularity.get(item_id)
        yield f"{item_id}\t{_tsv_field(titles.get(item_id, ''))}\t{'' if count is None else int(count)}\n"


def tsv_paths(out: str) -> tuple[str, str]:
    """(vectors.tsv, metadata.tsv) for --out: a directory, or a file-name prefix ending in '_', '-' or '.'."""
    if os.path.basename(out).endswith(_PREFIX_ENDINGS) and not os.path.isdir(out):
        return out + VECTORS_TSV, out + METADATA_TSV
    return os.path.join(out, VECTORS_TSV), os.path.join(out, METADATA_TSV)


def write_lines(path: str, lines: Iterable[str]) -> str:
    """Writes atomically (temporary file + rename); undecodable id bytes are written back as they were."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
            f.writelines(lines)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def write_word2vec(path: str, item_ids: Sequence[str], vectors: np.ndarray) -> str:
    check_word2vec_ids(item_ids)  # before creating anything
    return write_lines(path, word2vec_lines(item_ids, vectors))


def write_projector_tsv(
    out: str,
    item_ids: Sequence[str],
    vectors: np.ndarray,
    titles: Mapping[str, str] | None = None,
    popularity: Mapping[str, int] | None = None,
) -> tuple[str, str]:
    """vectors.tsv and metadata.tsv for TensorBoard's embedding projector; returns their paths."""
    vectors = _check_vectors(item_ids, vectors)
    metadata = list(projector_metadata_lines(item_ids, titles, popularity))  # checks ids before writing
    vectors_path, metadata_path = tsv_paths(out)
    write_lines(vectors_path, projector_vector_lines(vectors))
    write_lines(metadata_path, metadata)
    return vectors_path, metadata_path


def latest_cooccurrence_popularity(output_dir: str) -> dict[str, int] | None:
    """Engagement counts from the run's newest co-occurrence candidate table, or None when it has none."""
    tables = [
        os.path.dirname(meta)
        for meta in glob.glob(os.path.join(output_dir, _COOCCURRENCE_TABLES, candidate_table.META_FILE))
    ]
    if not tables:
        return None
    table = candidate_table.load_table(max(tables, key=os.path.getmtime))
    return dict(zip(table.items, table.popularity.tolist(), strict=True))


@dataclass(frozen=True)
class EmbeddingExportSettings:
    serving_dir: str  # the run's serving directory; vectors come from <serving_dir>/pin2vec_similar/<latest>
    out: str  # word2vec: the file; tsv: a directory or a file-name prefix (see tsv_paths)
    format: str = "word2vec"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format={self.format!r} is invalid: expected one of {list(FORMATS)}")
        if not self.out:
            raise ValueError("out is empty: expected a file (word2vec) or a directory/prefix (tsv)")


def export_embeddings(
    settings: EmbeddingExportSettings,
    titles: Mapping[str, str] | None = None,
    popularity: Mapping[str, int] | None = None,
) -> tuple[ItemVectors, list[str]]:
    """Writes the latest pushed vectors in `settings.format`; returns what was read and the written paths."""
    loaded = load_pushed_vectors(settings.serving_dir)
    if settings.format == "word2vec":
        return loaded, [write_word2vec(settings.out, loaded.item_ids, loaded.vectors)]
    return loaded, list(
        write_projector_tsv(settings.out, loaded.item_ids, loaded.vectors, titles, popularity)
    )


def _check_vectors(item_ids: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    vectors = index_files.validate_embeddings(vectors, name="vectors")
    if len(item_ids) != vectors.shape[0]:
        raise ValueError(f"{len(item_ids)} item ids for {vectors.shape[0]} vectors; expected one id per row")
    return vectors
