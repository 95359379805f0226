"""AnomalyGate: anomalies described as sentences, and the gate's executor on a hand-made ExampleAnomalies."""

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.anomaly_gate import anomalies_lib
from components.anomaly_gate.component import AnomalyGate


def _feature_anomaly(anomalies, feature, short, long):
    info = anomalies.anomaly_info[feature]
    info.description = long
    reason = info.reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES
    reason.short_description = short
    reason.description = long


def _with_feature_anomaly():
    anomalies = anomalies_pb2.Anomalies()
    _feature_anomaly(anomalies, "item_id", "Unexpected string values", "Examples contain values missing")
    return anomalies


def test_describe_anomalies_of_clean_data_is_empty():
    assert anomalies_lib.describe_anomalies(anomalies_pb2.Anomalies()) == []


def test_describe_anomalies_names_features_and_dataset():
    anomalies = _with_feature_anomaly()
    _feature_anomaly(anomalies, "context_id", "Column dropped", "Feature was present in fewer examples")
    reason = anomalies.dataset_anomaly_info.reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.DATASET_LOW_NUM_EXAMPLES
    reason.short_description = "Low num examples"
    reason.description = "The dataset has 3 examples, fewer than 10"

    assert anomalies_lib.describe_anomalies(anomalies) == [
        "feature 'context_id': Column dropped: Feature was present in fewer examples",
        "feature 'item_id': Unexpected string values: Examples contain values missing",
        "dataset: Low num examples: The dataset has 3 examples, fewer than 10",
    ]


def test_describe_anomalies_falls_back_to_the_description_without_reasons():
    anomalies = anomalies_pb2.Anomalies()
    anomalies.anomaly_info["label"].description = "drift too high"
    assert anomalies_lib.describe_anomalies(anomalies) == ["feature 'label': drift too high"]


def _write(split_dir, anomalies):
    split_dir.mkdir(parents=True)
    (split_dir / anomalies_lib.ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())


def test_read_split_anomalies_round_trips(tmp_path):
    _write(tmp_path / "Split-train", _with_feature_anomaly())
    assert anomalies_lib.read_split_anomalies(str(tmp_path / "Split-train")) == _with_feature_anomaly()


def test_read_split_anomalies_names_the_missing_file(tmp_path):
    missing = tmp_path / "Split-eval" / anomalies_lib.ANOMALIES_FILE
    with pytest.raises(FileNotFoundError, match="ExampleValidator") as error:
        anomalies_lib.read_split_anomalies(str(tmp_path / "Split-eval"))
    assert str(missing) in str(error.value)


def _run_gate(tmp_path, per_split):
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path / "anomalies")
    artifact.split_names = artifact_utils.encode_split_names(list(per_split))
    for split, anomalies in per_split.items():
        _write(tmp_path / "anomalies" / f"Split-{split}", anomalies)
    AnomalyGate.EXECUTOR_SPEC.executor_class().Do({"anomalies": [artifact]}, {}, {})


def test_gate_passes_clean_anomalies(tmp_path):
    _run_gate(tmp_path, {"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()})


def test_gate_fails_naming_the_split_and_feature(tmp_path):
    with pytest.raises(RuntimeError, match="stopping before training") as error:
        _run_gate(tmp_path, {"train": anomalies_pb2.Anomalies(), "eval": _with_feature_anomaly()})
    message = str(error.value)
    assert "[eval] feature 'item_id': Unexpected string values" in message
    assert "[train]" not in message
    assert str(tmp_path / "anomalies") in message


def test_gate_fails_when_a_split_has_no_anomalies_file(tmp_path):
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path / "anomalies")
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    with pytest.raises(FileNotFoundError, match="Split-train"):
        AnomalyGate.EXECUTOR_SPEC.executor_class().Do({"anomalies": [artifact]}, {}, {})
