"""ColdStartCandidates: a TFX component giving every item engaged in the window a candidate list.

Input: the engagement log SessionExampleGen reads (same path, columns and session settings; it must follow
SessionExampleGen's input). Output: `candidates`, a `RelatedCandidates` table (formats/candidate_table.py)
whose rows are every engaged item, rare and held-out ones included; its custom properties carry num_items,
top_n and items_without_cooccurrence. Pushed as the `coldstart` model: what `related` falls back to.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.code_version import CODE_VERSION_KEY, code_version
from components.coldstart import executor
from components.cooccurrence.component import RelatedCandidates
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from components.session_example_gen import spans_lib
from components.session_example_gen.input_files import fingerprint_inputs
from components.session_example_gen.session_settings import EventSource, SessionSettings, encode_config
from formats.settings_codec import encode_settings


class ColdStartCandidatesSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.INPUT_PATH_KEY: ExecutionParameter(type=str),
        executor.INPUT_CONFIG_KEY: ExecutionParameter(type=str),
        executor.INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str),  # changes when the input files do
        executor.CONFIG_KEY: ExecutionParameter(type=str),
        CODE_VERSION_KEY: ExecutionParameter(type=str),
    }
    # SessionExampleGen's output: for a span pattern, the window it read (its `span_selection` property).
    INPUTS = {executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {executor.CANDIDATES_KEY: ChannelParameter(type=RelatedCandidates)}


class ColdStartCandidates(base_beam_component.BaseBeamComponent):
    """Session co-occurrence over every event of the window, before the min_count cut and the hold-out."""

    SPEC_CLASS = ColdStartCandidatesSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.Channel,
        source: EventSource,
        sessions: SessionSettings | None = None,
        settings: CooccurrenceSettings | None = None,
        input_fingerprint: str | None = None,
    ):
        """`examples`: SessionExampleGen's output, so a span pattern is read over the same window; `source`,
        `sessions` and `input_fingerprint`: SessionExampleGen's own (its min_count and hold-out are ignored
        here); `settings`: the co-occurrence ranking, CooccurrenceCandidates' own."""
        if input_fingerprint is None:
            input_fingerprint = (
                "" if spans_lib.has_span_spec(source.path) else fingerprint_inputs(source.path)
            )
        super().__init__(
            spec=ColdStartCandidatesSpec(
                examples=examples,
                input_path=source.path,
                input_config=encode_config(source, sessions or SessionSettings()),
                input_fingerprint=input_fingerprint,
                cooccurrence_config=encode_settings(settings or CooccurrenceSettings()),
                code_version=code_version(executor.__name__),
                candidates=types.Channel(type=RelatedCandidates),
            )
        )
