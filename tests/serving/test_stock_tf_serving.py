"""The `embedding` SavedModel loads in stock tensorflow_model_server: its signatures as `saved_model_cli show`
prints them, and only ops that stock TensorFlow registers (no ScaNN ops, the reason `related` is served by
`pin2vec serve`). The real export (trainer_module.export on a tiny model with a real tf.Transform graph) is
checked in the slow run (`saved_model_cli` alone takes ~20-40 s here); the default run reads the same
SignatureDefs of the test model that the server tests serve."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from serving.signatures import saved_model_signatures
from trainer_module import features

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


def _show(export_dir: str, signature: str) -> str:
    result = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", export_dir, "--tag_set", "serve", "--signature_def", signature],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _tensor(show_output: str, kind: str, name: str) -> tuple[str, str]:
    """(dtype, shape) of one input or output in `saved_model_cli show` output."""
    match = re.search(
        rf"{kind}\['{name}'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))", show_output, re.MULTILINE
    )
    assert match, f"{kind}['{name}'] not in:\n{show_output}"
    return match.group(1), match.group(2)


def _unregistered_ops(export_dir: str) -> set[str]:
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in meta_graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    return {op for op in ops if op_def_registry.get(op) is None}


def _check_serving_contract(export_dir: str, dim: int) -> None:
    shown = _show(export_dir, features.SERVING_SIGNATURE)
    assert _tensor(shown, "inputs", features.SERVING_INPUT) == ("DT_STRING", "(-1)")
    assert _tensor(shown, "outputs", features.SERVING_OUTPUT) == ("DT_FLOAT", f"(-1, {dim})")
    assert _tensor(shown, "outputs", features.KNOWN_OUTPUT) == ("DT_BOOL", "(-1)")
    assert "Method name is: tensorflow/serving/predict" in shown
    assert _unregistered_ops(export_dir) == set()


def test_served_test_model_signatures_read_like_saved_model_cli_shows_them(artifacts):
    """Fast: the same SignatureDef that saved_model_cli prints, read from saved_model.pb."""
    signature = saved_model_signatures(artifacts.embedding)[features.SERVING_SIGNATURE]
    assert signature.method_name == "tensorflow/serving/predict"
    dtypes = {
        name: (info.dtype, [d.size for d in info.tensor_shape.dim]) for name, info in signature.inputs.items()
    }
    assert dtypes == {features.SERVING_INPUT: (types_pb2.DT_STRING, [-1])}
    embedding = signature.outputs[features.SERVING_OUTPUT]
    assert (embedding.dtype, [d.size for d in embedding.tensor_shape.dim]) == (types_pb2.DT_FLOAT, [-1, 16])
    assert _unregistered_ops(artifacts.embedding) == set()


@pytest.mark.slow
def test_served_test_model_has_the_stock_serving_contract(artifacts):
    _check_serving_contract(artifacts.embedding, dim=16)


@pytest.fixture(scope="module")
def real_export(tmp_path_factory):
    """trainer_module.export.export_serving_model on a real (tiny) tf.Transform output and Keras model."""
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from trainer_module import preprocessing
    from trainer_module.export import export_serving_model
    from trainer_module.model import TrainerSettings, build_model

    root = tmp_path_factory.mktemp("real_export")
    items = [f"item-{i}".encode() for i in range(30)]
    rows = [{"item": [items[i]], "label": [items[(i + 1) % 30]], "timestamp": [i]} for i in range(30)]
    spec = {
        features.ITEM: tf.io.FixedLenFeature([1], tf.string),
        features.LABEL: tf.io.FixedLenFeature([1], tf.string),
        features.TIMESTAMP: tf.io.FixedLenFeature([1], tf.int64),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    transform_dir = str(root / "transform")
    with tft_beam.Context(temp_dir=str(root / "tmp")):
        transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(preprocessing.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, "metadata"))
    model = build_model(31, TrainerSettings(num_negatives=4))
    model(tf.constant([0], tf.int64))
    return export_serving_model(model, tft.TFTransformOutput(transform_dir), str(root / "export"))


@pytest.mark.slow
def test_real_export_loads_in_stock_tf_serving(real_export):
    from trainer_module.model import TrainerSettings

    _check_serving_contract(real_export, dim=TrainerSettings().embedding_dim)
    scores = _show(real_export, features.SCORING_SIGNATURE)
    assert _tensor(scores, "inputs", "examples") == ("DT_STRING", "(-1)")
