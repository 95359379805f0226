"""Stops the run before Transform when ExampleValidator found anomalies.

ExampleValidator records anomalies but lets the pipeline go on; training on data that breaks the schema
would push a model built on garbage, so this gate turns anomalies into a failed step with the reasons.
"""

from tfx import v1 as tfx
from tfx.types import artifact_utils

from components.anomaly_gate.anomalies_lib import describe_anomalies, read_split_anomalies


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    # Unused here: it only keys TFX's cache on this code (components/code_version.py).
    code_version: tfx.dsl.components.Parameter[str] = "",
):
    problems = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        uri = artifact_utils.get_split_uri([anomalies], split)
        problems += [f"[{split}] {line}" for line in describe_anomalies(read_split_anomalies(uri))]
    if problems:
        raise RuntimeError(
            "ExampleValidator found anomalies in the training pairs; stopping before training:\n  "
            + "\n  ".join(problems)
            + f"\n(anomalies artifact: {anomalies.uri})"
        )
