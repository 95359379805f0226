"""SessionExampleGen: engagement logs -> session pairs (Examples) + unreadable rows (Quarantine)."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto.range_config_pb2 import RangeConfig
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.code_version import CODE_VERSION_KEY, code_version
from components.session_example_gen import driver, executor, spans_lib
from components.session_example_gen.input_files import fingerprint_inputs
from components.session_example_gen.session_settings import EventSource, SessionSettings, encode_config


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
        # For an input pattern with spans: TFX's RangeConfig as JSON ('' = the latest span), and the spans
        # and files the driver chose at run time (empty where no driver runs: the executor resolves them).
        driver.RANGE_CONFIG_KEY: ExecutionParameter(type=str, optional=True),
        driver.SPAN_SELECTION_KEY: ExecutionParameter(type=str, optional=True),
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
    DRIVER_CLASS = driver.SpanDriver

    def __init__(
        self,
        source: EventSource,
        settings: SessionSettings | None = None,
        input_fingerprint: str | None = None,
        range_config: RangeConfig | None = None,
    ):
        """`source.path` is a file, directory or glob, or a TFX input pattern with `{SPAN}` or
        `{YYYY}-{MM}-{DD}` placeholders; `range_config` (e.g. `spans_lib.rolling_range(7)`) chooses its
        spans, by default the latest one, as TFX's ExampleGen does.

        `input_fingerprint` defaults to `fingerprint_inputs(source.path)`, computed when the pipeline is
        built; pass it explicitly when the input is not reachable from where the pipeline is compiled. For a
        span pattern the driver fingerprints the chosen spans' files at run time instead.
        """
        is_pattern = spans_lib.has_span_spec(source.path)
        if range_config is not None and not is_pattern:
            raise ValueError(
                f"a span range (--days) needs an input pattern with {{SPAN}} or {{YYYY}}-{{MM}}-{{DD}}, "
                f"got {source.path!r}"
            )
        if input_fingerprint is None:
            input_fingerprint = "" if is_pattern else fingerprint_inputs(source.path)
        spec = SessionExampleGenSpec(
            input_path=source.path,
            input_config=encode_config(source, settings or SessionSettings()),
            input_fingerprint=input_fingerprint,
            range_config=spans_lib.range_config_to_json(range_config),
            span_selection="",
            code_version=code_version(executor.__name__),
            examples=types.Channel(type=standard_artifacts.Examples),
            quarantine=types.Channel(type=Quarantine),
        )
        super().__init__(spec=spec)
