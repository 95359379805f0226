"""The exported signatures: scoring ranks like brute-force next-engagement scores (hidden layer x softmax
rows), serving returns what the indexes are built from, and TFMA's gate reads HR@k."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.utils import config_util

from pipeline.config import EvaluationSettings
from pipeline.pipeline import HIT_RATE_AT_10, HIT_RATE_AT_50, make_eval_config
from tests.trainer.transform_output import run_transform
from trainer_module import features
from trainer_module.export import EmbeddingExport, export_serving_model
from trainer_module.model import TrainerSettings, build_model
from trainer_module.vocabulary_file import read_vocabulary

NUM_ITEMS = 150  # more than SCORING_TOP_K, and queries over more than one chunk of 64


def _example(item: str, label: str) -> bytes:
    feature = {
        features.ITEM: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
        features.LABEL: tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
        features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    items = [f"item-{i}" for i in range(NUM_ITEMS)]
    rng = np.random.default_rng(0)
    labels = [items[i] for i in rng.integers(0, NUM_ITEMS, size=NUM_ITEMS)]
    transform_output, _ = run_transform((items, labels), ([], []), str(root))
    model = build_model(
        NUM_ITEMS + features.NUM_OOV_BUCKETS, TrainerSettings(embedding_dim=16, num_negatives=4)
    )
    vocabulary, _ = read_vocabulary(transform_output)
    # Trained-looking softmax biases, so that a scorer that ignored (or wrongly used) them would show.
    model.softmax_biases.assign(np.random.default_rng(2).normal(size=NUM_ITEMS + 1).astype(np.float32))
    export_dir = export_serving_model(model, transform_output, str(root / "model"))
    table = model.item_table.embeddings.numpy()[:NUM_ITEMS]
    hidden = tf.nn.elu(table + model.hidden_bias.numpy()).numpy()
    vectors = hidden / np.linalg.norm(hidden, axis=1, keepdims=True)
    rows, biases = model.softmax_weights.numpy()[:NUM_ITEMS], model.softmax_biases.numpy()[:NUM_ITEMS]
    scorers = {
        "next": lambda row: hidden[row] @ rows.T + (biases if features.NEXT_SCORE_USES_BIAS else 0.0),
        "cosine": lambda row: vectors @ vectors[row],
        "logits": model.softmax_logits(tf.constant([0, 1])).numpy()[:, :NUM_ITEMS],
        "rows": (hidden, rows, biases),
    }
    legacy_dir = str(root / "legacy")
    legacy = LegacyExport(model, transform_output)
    signatures = {
        features.SCORING_SIGNATURE: legacy.score_examples.get_concrete_function(),
        features.TRANSFORM_SIGNATURE: legacy.transform_features.get_concrete_function(),
    }
    tf.saved_model.save(legacy, legacy_dir, signatures=signatures)
    return export_dir, legacy_dir, [v.decode() for v in vocabulary], scorers


class LegacyExport(EmbeddingExport):
    """The scoring signature as models exported before it ranked its own rows: a score for every row."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def score_examples(self, serialized):
        raw = tf.io.parse_example(serialized, {features.ITEM: self._raw_feature_spec[features.ITEM]})
        indices = self._indices(raw[features.ITEM])
        queries = tf.math.l2_normalize(self._embed(indices), axis=1)
        items = tf.math.l2_normalize(self.unit_vectors * self.vector_norms[:, tf.newaxis], axis=1)
        scores = tf.matmul(queries, items, transpose_b=True)
        excluded = tf.logical_or(
            tf.one_hot(indices, self.num_classes, on_value=True, off_value=False),
            tf.range(self.num_classes)[tf.newaxis, :] >= self.vocabulary_size,
        )
        return {features.LEGACY_SCORING_OUTPUT: tf.where(excluded, -1e9, scores)}


def _brute_force_scores(score, row: int) -> np.ndarray:
    scores = np.array(score(row), dtype=np.float64)
    scores[row] = -np.inf
    return scores


def test_next_engagement_scores_are_the_keras_models_own_logits(export):
    _, _, _, scorers = export
    logits = scorers["logits"]  # softmax_logits of rows 0 and 1: hidden . softmax row + softmax bias
    hidden, rows, biases = scorers["rows"]
    np.testing.assert_allclose(hidden[:2] @ rows.T + biases, logits, rtol=1e-5, atol=1e-5)


def test_serving_signature_returns_hidden_layers_softmax_rows_and_biases(export):
    export_dir, _, vocabulary, scorers = export
    hidden, rows, biases = scorers["rows"]
    signature = tf.saved_model.load(export_dir).signatures[features.SERVING_SIGNATURE]
    out = signature(**{features.SERVING_INPUT: tf.constant([vocabulary[5], vocabulary[7], "never-seen"])})
    np.testing.assert_allclose(out[features.SERVING_OUTPUT].numpy()[:2], hidden[[5, 7]], rtol=1e-5)
    np.testing.assert_allclose(out[features.SOFTMAX_ROW_OUTPUT].numpy()[:2], rows[[5, 7]], rtol=1e-6)
    np.testing.assert_allclose(out[features.SOFTMAX_BIAS_OUTPUT].numpy()[:2], biases[[5, 7]], rtol=1e-6)
    assert out[features.KNOWN_OUTPUT].numpy().tolist() == [True, True, False]


def test_scoring_signature_returns_the_top_rows_of_brute_force_next_engagement_scores(export):
    export_dir, _, vocabulary, scorers = export
    signature = tf.saved_model.load(export_dir).signatures[features.SCORING_SIGNATURE]
    queries = [*vocabulary[:130], "never-seen"]
    top = signature(examples=tf.constant([_example(q, q) for q in queries]))[features.SCORING_OUTPUT].numpy()
    assert top.shape == (len(queries), features.SCORING_TOP_K) and top.dtype == np.int64
    for row, rows in enumerate(top[:-1]):
        assert row not in rows  # the query itself is left out
        scores = _brute_force_scores(scorers["next"], row)
        expected = np.sort(scores)[::-1][: features.SCORING_TOP_K]
        np.testing.assert_allclose(scores[rows], expected, atol=1e-4)  # same rows up to float ties
    assert (top < NUM_ITEMS).all()  # never the OOV row, not even for an unknown query
    one = signature(examples=tf.constant([_example(queries[3], "x")]))[features.SCORING_OUTPUT].numpy()
    np.testing.assert_array_equal(one, top[3:4])  # a batch of one ranks as in a batch of many
    none = signature(examples=tf.constant([], tf.string))[features.SCORING_OUTPUT].numpy()
    assert none.shape == (0, features.SCORING_TOP_K)


def test_tfma_gate_reads_brute_force_hit_rates_from_candidate_and_older_baseline(export, tmp_path):
    """The Evaluator's EvalConfig run by TFMA: HR@10/50 of the new export (next-engagement scores) and of
    a baseline exported with full cosine scores (as an older blessed model may be) equal the rates counted."""
    export_dir, legacy_dir, vocabulary, scorers = export
    rng = np.random.default_rng(1)
    pairs = [(vocabulary[i], vocabulary[j]) for i, j in rng.integers(0, NUM_ITEMS, size=(200, 2)) if i != j]
    data = str(tmp_path / "eval.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for item, label in pairs:
            writer.write(_example(item, label))
    ranks = {tfma.CANDIDATE_KEY: [], tfma.BASELINE_KEY: []}
    for item, label in pairs:
        for model, scorer in ((tfma.CANDIDATE_KEY, "next"), (tfma.BASELINE_KEY, "cosine")):
            scores = _brute_force_scores(scorers[scorer], vocabulary.index(item))
            ranks[model].append(int((scores > scores[vocabulary.index(label)]).sum()))
    eval_config = config_util.update_eval_config_with_defaults(
        make_eval_config(EvaluationSettings(min_hit_rate_at_10=0.0)), has_baseline=True
    )
    models = [
        tfma.default_eval_shared_model(path, eval_config=eval_config, model_name=name)
        for path, name in ((export_dir, tfma.CANDIDATE_KEY), (legacy_dir, tfma.BASELINE_KEY))
    ]
    output_path = str(tmp_path / "tfma")
    tfma.run_model_analysis(
        eval_shared_model=models, eval_config=eval_config, data_location=data, output_path=output_path
    )
    (overall,) = tfma.load_metrics(output_path)
    values = {
        (m.key.model_name, m.key.name): m.value.double_value.value
        for m in overall.metric_keys_and_values
        if not m.key.is_diff
    }
    for model in (tfma.CANDIDATE_KEY, tfma.BASELINE_KEY):
        assert values[model, HIT_RATE_AT_10] == pytest.approx(np.mean(np.array(ranks[model]) < 10))
        assert values[model, HIT_RATE_AT_50] == pytest.approx(np.mean(np.array(ranks[model]) < 50))
        assert values[model, "example_count"] == len(pairs)
    drop = np.mean(np.array(ranks[tfma.BASELINE_KEY]) < 10) - np.mean(
        np.array(ranks[tfma.CANDIDATE_KEY]) < 10
    )
    assert tfma.load_validation_result(output_path).validation_ok == (drop <= 1e-9)  # the change threshold
