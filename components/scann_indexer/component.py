"""ScannIndexer: a TFX component that turns the trained model and the Transform vocabulary into ScaNN indexes.

Inputs: `model` (the serving SavedModel) and `transform_graph` (the item vocabulary). Two `ScannIndex`
directories (layout in `formats.index_files`): `next_index`, the `pin2vec` source (what the network predicts
next: softmax rows searched by maximum inner product with the query's hidden layer), and `index`, the
`pin2vec_similar` source (cosine between hidden layers). Their custom properties carry recall_at_k, k,
num_items, dimensions, scorer and blessed (1 when recall_at_k >= min_recall); the pusher pushes only blessed
indexes.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.code_version import CODE_VERSION_KEY, code_version
from components.scann_indexer import executor
from components.scann_indexer.index_lib import IndexSettings
from formats.settings_codec import encode_settings


class ScannIndex(artifact.Artifact):
    """A directory written by `index_lib.save_index`: ScaNN assets, item ids, embeddings, index.json."""

    TYPE_NAME = "pin2vec.ScannIndex"


class ScannIndexerSpec(types.ComponentSpec):
    """Inputs, outputs and the execution property of `ScannIndexer`."""

    PARAMETERS = {
        executor.INDEX_CONFIG_KEY: ExecutionParameter(type=str),
        CODE_VERSION_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
    }
    OUTPUTS = {
        executor.INDEX_KEY: ChannelParameter(type=ScannIndex),
        executor.NEXT_INDEX_KEY: ChannelParameter(type=ScannIndex),
    }


class ScannIndexer(base_component.BaseComponent):
    """Embeds every vocabulary item, builds both ScaNN indexes, blesses each whose recall@k is high enough."""

    SPEC_CLASS = ScannIndexerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        transform_graph: types.BaseChannel,
        index_config: IndexSettings | None = None,
    ):
        """`index_config` is stored as JSON (never pickled): ML Metadata shows it and caching keys on it."""
        if index_config is not None and not isinstance(index_config, IndexSettings):
            raise TypeError(f"index_config must be an IndexSettings; got {type(index_config).__name__}")
        spec = ScannIndexerSpec(
            model=model,
            transform_graph=transform_graph,
            index_config=encode_settings(index_config or IndexSettings()),
            code_version=code_version(executor.__name__),
            index=types.Channel(type=ScannIndex),
            next_index=types.Channel(type=ScannIndex),
        )
        super().__init__(spec=spec)
