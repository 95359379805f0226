"""`pin2vec export-related`: every item's related items as an offline candidate table (Beam).

Rows: item_id (bytes), related_ids (list of bytes, best first), scores and distances, the same answer `pin2vec
serve` gives for the same version. For an index source, scores are the index's own (cosine similarity for
`pin2vec_similar`, the network's logit for `pin2vec`) and distances 1 - score; for a table source
(cooccurrence, board, blend, coldstart), scores are the table's and distances the cosine distances between
the items' embeddings in the same version's cosine index (2.0 where one has none), as the server gives them.
Written as Parquet and/or TFRecord of tf.train.Example with the same four features; ids are the vocabulary's
bytes, exactly.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from formats import candidate_table, index_files, serving_layout
from formats.index_searcher import RelatedItemsSearcher, latest_version_dir
from serving.candidate_model import TableSearcher, distance_index
from serving.model_registry import version_dirs

FORMATS = ("parquet", "tfrecord")
FILE_PREFIX = "related"


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    serving_dir: str  # the run's serving directory; the index is <serving_dir>/<source's model>/<version>
    out: str
    source: str = "pin2vec"  # one of serving_layout.SOURCE_MODELS
    k: int = 50
    version: int | None = None  # None: the latest complete version
    formats: tuple[str, ...] = FORMATS
    batch_size: int = 1024
    beam_args: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("k", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        if self.source not in serving_layout.SOURCE_MODELS:
            raise ValueError(
                f"source must be one of {list(serving_layout.SOURCE_MODELS)}; got {self.source!r}"
            )
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown or not self.formats:
            raise ValueError(f"formats must be some of {list(FORMATS)}; got {list(self.formats)}")


def index_directory(serving_dir: str, version: int | None, source: str = "pin2vec") -> str:
    base = os.path.join(serving_dir, serving_layout.SOURCE_MODELS[source])
    if version is None:
        marker = (
            index_files.METADATA_FILE if source in serving_layout.INDEX_SOURCES else candidate_table.META_FILE
        )
        found = latest_version_dir(base, marker)
        if found is None:
            raise FileNotFoundError(
                f"no complete pushed {source} version under {base}; run `pin2vec run` first"
            )
        return found
    found = version_dirs(base).get(version)
    if found is None:
        raise FileNotFoundError(f"no version {version} under {base}; versions: {sorted(version_dirs(base))}")
    return found


def row_ranges(num_items: int, batch_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + batch_size, num_items)) for start in range(0, num_items, batch_size)]


def open_searcher(version_dir: str, source: str, k: int):
    """The searcher `pin2vec serve` answers `source` from: its index, or its table with the same version's
    cosine index for distances."""
    if source in serving_layout.INDEX_SOURCES:
        return RelatedItemsSearcher(version_dir, max_k=k)
    serving_dir, version = os.path.dirname(os.path.dirname(version_dir)), int(os.path.basename(version_dir))
    index_base = os.path.join(serving_dir, serving_layout.PIN2VEC_SIMILAR_MODEL)
    return TableSearcher(version_dir, distance_index(index_base, version), max_k=k)


def source_items(searcher) -> list[str]:
    """The items a searcher answers, in its row order."""
    return list(searcher.table.items if isinstance(searcher, TableSearcher) else searcher.item_ids)


def related_rows(searcher, items: list[str], k: int) -> Iterator[dict]:
    """The export's rows for `items`."""
    answers = searcher.related(items, k)
    for item_id in items:
        neighbours = answers[item_id] or []
        scores = [float(score) for _, score in neighbours]
        others = [other for other, _ in neighbours]
        if isinstance(searcher, TableSearcher):
            distances = [float(d) for d in searcher.distances(item_id, others)]
        else:
            distances = [1.0 - score for score in scores]
        yield {
            "item_id": index_files.encode_item_id(item_id),
            "related_ids": [index_files.encode_item_id(other) for other in others],
            "scores": scores,
            "distances": distances,
        }


def to_example(row: dict) -> bytes:
    import tensorflow as tf

    feature = tf.train.Feature
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "item_id": feature(bytes_list=tf.train.BytesList(value=[row["item_id"]])),
                "related_ids": feature(bytes_list=tf.train.BytesList(value=row["related_ids"])),
                "scores": feature(float_list=tf.train.FloatList(value=row["scores"])),
                "distances": feature(float_list=tf.train.FloatList(value=row["distances"])),
            }
        )
    ).SerializeToString()


def parquet_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("item_id", pa.binary()),
            ("related_ids", pa.list_(pa.binary())),
            ("scores", pa.list_(pa.float32())),
            ("distances", pa.list_(pa.float32())),
        ]
    )


class _RelatedBatch(beam.DoFn):
    """Loads the index or table once per worker; each element is a range of its rows."""

    def __init__(self, directory: str, source: str, k: int):
        self._directory = directory
        self._source = source
        self._k = k
        self._searcher = None
        self._items: list[str] = []

    def setup(self):
        self._searcher = open_searcher(self._directory, self._source, self._k)
        self._items = source_items(self._searcher)

    def process(self, rows: tuple[int, int]):
        yield from related_rows(self._searcher, self._items[rows[0] : rows[1]], self._k)


def export_related(settings: ExportSettings) -> list[str]:
    """Runs the Beam pipeline and returns the files written."""
    directory = index_directory(settings.serving_dir, settings.version, settings.source)
    if settings.source in serving_layout.INDEX_SOURCES:
        with open(os.path.join(directory, index_files.METADATA_FILE), encoding="utf-8") as f:
            num_items = json.load(f)["num_items"]
        if settings.k > num_items - 1:
            raise ValueError(
                f"k={settings.k} but the index at {directory} has only {num_items - 1} other items"
            )
    else:
        table = candidate_table.load_table(directory)
        num_items = len(table.items)
        if settings.k > table.top_n:
            raise ValueError(
                f"--k {settings.k} but the {settings.source} table at {directory} keeps {table.top_n} "
                f"candidates per item (fixed when it was pushed): give --k {table.top_n} or less"
            )
    os.makedirs(settings.out, exist_ok=True)
    prefix = os.path.join(settings.out, FILE_PREFIX)
    # Beam's default runner is Prism, which it downloads on first use: name the local one unless told.
    beam_args = list(settings.beam_args)
    if not any(arg.startswith("--runner") for arg in beam_args):
        beam_args.append("--runner=DirectRunner")
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        rows = (
            pipeline
            | "Ranges" >> beam.Create(row_ranges(num_items, settings.batch_size))
            | "Reshuffle" >> beam.Reshuffle()
            | "Related" >> beam.ParDo(_RelatedBatch(directory, settings.source, settings.k))
        )
        if "parquet" in settings.formats:
            _ = rows | "Parquet" >> beam.io.WriteToParquet(
                prefix, parquet_schema(), file_name_suffix=".parquet"
            )
        if "tfrecord" in settings.formats:
            _ = (
                rows
                | "Examples" >> beam.Map(to_example)
                | "TFRecord" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".tfrecord")
            )
    return sorted(glob.glob(prefix + "*"))
