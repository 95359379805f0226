"""Reading ExampleValidator's anomalies into sentences a person can act on."""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

ANOMALIES_FILE = "SchemaDiff.pb"


def describe_anomalies(anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One line per anomalous feature (and one for dataset-level anomalies)."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason)
        lines.append(f"feature '{feature}': {reasons or info.description}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason)
        lines.append(f"dataset: {reasons or info.description}")
    return lines


def read_split_anomalies(split_uri: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(split_uri, ANOMALIES_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No anomalies file at {path}: was ExampleValidator run on this split?")
    anomalies = anomalies_pb2.Anomalies()
    with tf.io.gfile.GFile(path, "rb") as f:
        anomalies.ParseFromString(f.read())
    return anomalies
