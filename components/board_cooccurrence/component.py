"""BoardCooccurrence: a TFX component turning collections (items saved to boards) into candidate lists.

Input: the collections path (CSV/TSV/Parquet; a file, directory or glob) and the columns naming the board,
the item and optionally the save time. Outputs: `candidates`, a `RelatedCandidates` table (the `board`
source), and `quarantine`, the malformed rows with their reason, as SessionExampleGen keeps them for events.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.board_cooccurrence import executor
from components.board_cooccurrence.board_lib import BoardSettings
from components.code_version import CODE_VERSION_KEY, code_version
from components.cooccurrence.component import RelatedCandidates
from components.session_example_gen.component import Quarantine
from components.session_example_gen.input_files import fingerprint_inputs
from components.session_example_gen.session_settings import EventSource
from formats.settings_codec import encode_settings


class BoardCooccurrenceSpec(types.ComponentSpec):
    PARAMETERS = {
        executor.COLLECTIONS_PATH_KEY: ExecutionParameter(type=str),
        executor.SOURCE_CONFIG_KEY: ExecutionParameter(type=str),
        executor.CONFIG_KEY: ExecutionParameter(type=str),
        executor.INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str),  # changes when the files do
        CODE_VERSION_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {
        executor.CANDIDATES_KEY: ChannelParameter(type=RelatedCandidates),
        executor.QUARANTINE_KEY: ChannelParameter(type=Quarantine),
    }


class BoardCooccurrence(base_beam_component.BaseBeamComponent):
    """Top-N items saved to the same boards per item, large boards down-weighted."""

    SPEC_CLASS = BoardCooccurrenceSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self, source: EventSource, settings: BoardSettings | None = None, input_fingerprint: str | None = None
    ):
        """`source.user_col` names the board column. `input_fingerprint` defaults to the files' fingerprint
        (names, sizes, modification times), so new collections invalidate the cache."""
        if input_fingerprint is None:
            input_fingerprint = fingerprint_inputs(source.path)
        super().__init__(
            spec=BoardCooccurrenceSpec(
                collections_path=source.path,
                source_config=executor.source_to_json(source),
                board_config=encode_settings(settings or BoardSettings()),
                input_fingerprint=input_fingerprint,
                code_version=code_version(executor.__name__),
                candidates=types.Channel(type=RelatedCandidates),
                quarantine=types.Channel(type=Quarantine),
            )
        )
