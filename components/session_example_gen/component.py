"""SessionExampleGen: engagement logs -> session pairs (Examples) + unreadable rows (Quarantine)."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.code_version import CODE_VERSION_KEY, code_version
from components.session_example_gen import executor
from components.session_example_gen.sessions_lib import (
    EventSource,
    SessionSettings,
    encode_config,
    fingerprint_inputs,
)


class Quarantine(types.Artifact):
    """Malformed input rows, one JSON object per line in `quarantine.jsonl`.

    Custom properties: `bad_rows` and `rows_read` (ints), so ML Metadata shows the input's health per run.
    """

    TYPE_NAME = "pin2vec.Quarantine"


class SessionExampleGenSpec(types.ComponentSpec):
    """Exec properties are plain strings so that the KubeflowV2DagRunner can compile them."""

    PARAMETERS = {
        executor.INPUT_PATH_KEY: ExecutionParameter(type=str),
        executor.INPUT_CONFIG_KEY: ExecutionParameter(type=str),  # JSON of EventSource + SessionSettings
        executor.INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str),  # changes when the input files do
        CODE_VERSION_KEY: ExecutionParameter(type=str),  # changes when the code that splits them does
    }
    INPUTS = {}
    OUTPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.QUARANTINE_KEY: ChannelParameter(type=Quarantine),
    }


class SessionExampleGen(base_beam_component.BaseBeamComponent):
    """Reads an engagement log and emits (item, label, timestamp) tf.Examples: train pairs, and
    each user's held-out last engagements as eval (validation), test and rerank (the blend's training)
    queries."""

    SPEC_CLASS = SessionExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        source: EventSource,
        settings: SessionSettings | None = None,
        input_fingerprint: str | None = None,
    ):
        """`input_fingerprint` defaults to `fingerprint_inputs(source.path)`, computed when the pipeline is
        built; pass it explicitly when the input is not reachable from where the pipeline is compiled.
        """
        if input_fingerprint is None:
            input_fingerprint = fingerprint_inputs(source.path)
        spec = SessionExampleGenSpec(
            input_path=source.path,
            input_config=encode_config(source, settings or SessionSettings()),
            input_fingerprint=input_fingerprint,
            code_version=code_version(executor.__name__),
            examples=types.Channel(type=standard_artifacts.Examples),
            quarantine=types.Channel(type=Quarantine),
        )
        super().__init__(spec=spec)
