"""CooccurrenceCandidates: a TFX component counting co-engaged item pairs into per-item candidate lists.

Input: `examples` (SessionExampleGen's training pairs; only the train split is read, so held-out engagements
never leak into candidates). Output: `candidates`, a `RelatedCandidates` table (formats/candidate_table.py)
whose custom properties carry num_items and top_n.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.code_version import CODE_VERSION_KEY, code_version
from components.cooccurrence import executor
from components.cooccurrence.cooccurrence_lib import CooccurrenceSettings
from formats.settings_codec import encode_settings


class RelatedCandidates(artifact.Artifact):
    """A candidate table directory: item ids, ranked neighbour indices, scores, popularity."""

    TYPE_NAME = "pin2vec.RelatedCandidates"


class CooccurrenceCandidatesSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.CONFIG_KEY: ExecutionParameter(type=str),
        CODE_VERSION_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {executor.CANDIDATES_KEY: ChannelParameter(type=RelatedCandidates)}


class CooccurrenceCandidates(base_beam_component.BaseBeamComponent):
    """Top-N co-occurring items per item, scored by count damped by the candidate's popularity."""

    SPEC_CLASS = CooccurrenceCandidatesSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, settings: CooccurrenceSettings | None = None):
        """`settings` travel as JSON, so ML Metadata shows them and the cache keys on them."""
        settings = settings or CooccurrenceSettings()
        super().__init__(
            spec=CooccurrenceCandidatesSpec(
                examples=examples,
                cooccurrence_config=encode_settings(settings),
                code_version=code_version(executor.__name__),
                candidates=types.Channel(type=RelatedCandidates),
            )
        )
