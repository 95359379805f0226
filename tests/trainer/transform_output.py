"""A real tf.Transform run of the project's `preprocessing_fn` (tft_beam, as the Transform component runs
it) for trainer tests: the analysis output, and the pairs as Transform would have materialized them."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from trainer_module import features, preprocessing

RAW_SPEC = {
    features.ITEM: tf.io.FixedLenFeature([1], tf.string),
    features.LABEL: tf.io.FixedLenFeature([1], tf.string),
    features.TIMESTAMP: tf.io.FixedLenFeature([1], tf.int64),
}


def _rows(items: Sequence[str], labels: Sequence[str]) -> list[dict]:
    return [
        {features.ITEM: [i.encode()], features.LABEL: [j.encode()], features.TIMESTAMP: [0]}
        for i, j in zip(items, labels, strict=True)
    ]


def run_transform(
    analyse_pairs: tuple[Sequence[str], Sequence[str]],
    transform_pairs: tuple[Sequence[str], Sequence[str]],
    out_dir: str,
    min_count: int = 1,
) -> tuple[tft.TFTransformOutput, list[tuple[int, int]]]:
    """Analyses `analyse_pairs` and transforms `transform_pairs` with the result, as the pipeline's
    Transform did when it still materialized; returns the output and the (item, label) index pairs."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    transform_dir = os.path.join(out_dir, "transform")
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config={"vocabulary_min_count": min_count})
    with tft_beam.Context(temp_dir=os.path.join(out_dir, "tmp")):
        transform_fn = (_rows(*analyse_pairs), metadata) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
        transformed, _ = ((_rows(*transform_pairs), metadata), transform_fn) | tft_beam.TransformDataset()
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, "metadata"))
    pairs = [(int(r[features.ITEM_INDEX]), int(r[features.LABEL_INDEX])) for r in transformed]
    return tft.TFTransformOutput(transform_dir), pairs
