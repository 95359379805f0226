"""Pushes a blessed model with its passing indexes and the candidate tables as one version; when the model or
an index is refused, only what does not depend on the network (co-occurrence, board, the evaluation)."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.code_version import CODE_VERSION_KEY, code_version
from components.cooccurrence.component import RelatedCandidates
from components.related_evaluator.component import RelatedEvaluation
from components.related_pusher.executor import PUSH_CONFIG_KEY, Executor
from components.related_pusher.push_policy import PushSettings
from components.scann_indexer.component import ScannIndex
from formats.settings_codec import encode_settings


class RelatedPusherSpec(ComponentSpec):
    PARAMETERS = {
        "serving_base_dir": ExecutionParameter(type=str),
        PUSH_CONFIG_KEY: ExecutionParameter(type=str, optional=True),
        CODE_VERSION_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "index": ChannelParameter(type=ScannIndex),
        "next_index": ChannelParameter(type=ScannIndex, optional=True),
        "cooccurrence": ChannelParameter(type=RelatedCandidates, optional=True),
        "board": ChannelParameter(type=RelatedCandidates, optional=True),
        "coldstart": ChannelParameter(type=RelatedCandidates, optional=True),
        "blend": ChannelParameter(type=RelatedCandidates, optional=True),
        "evaluation": ChannelParameter(type=RelatedEvaluation, optional=True),
    }
    OUTPUTS = {"pushed_model": ChannelParameter(type=standard_artifacts.PushedModel)}


class RelatedPusher(base_component.BaseComponent):
    """Publishes `<serving_base_dir>/<model>/<v>/` for every model (`formats.serving_layout`), atomically."""

    SPEC_CLASS = RelatedPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        model,
        model_blessing,
        index,
        serving_base_dir: str,
        next_index=None,
        cooccurrence=None,
        board=None,
        blend=None,
        coldstart=None,
        evaluation=None,
        settings: PushSettings | None = None,
    ):
        """`settings`: the pusher's own gates (--min-neighbour-overlap); left out of the execution's
        properties while they are the defaults, so turning one on is what changes the pusher's cache key."""
        settings = settings or PushSettings()
        push_config = None
        if settings != PushSettings():
            push_config = encode_settings(settings)
        super().__init__(
            spec=RelatedPusherSpec(
                model=model,
                model_blessing=model_blessing,
                index=index,
                next_index=next_index,
                cooccurrence=cooccurrence,
                board=board,
                coldstart=coldstart,
                blend=blend,
                evaluation=evaluation,
                serving_base_dir=serving_base_dir,
                push_config=push_config,
                code_version=code_version(Executor.__module__),
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )
