"""The Trainer's `base_model` resolver strategy (see base_model_lib): the lineage is read from ML Metadata."""

from __future__ import annotations

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common import resolver

from components.warm_start_trainer.base_model_lib import choose_base_model

MODEL, MODEL_BLESSING, EXAMPLES = "model", "model_blessing", "examples"  # the resolver's input keys
BLESSED, CURRENT_MODEL_ID = "blessed", "current_model_id"  # the Evaluator's ModelBlessing properties


def training_examples(store, model_ids: list[int]) -> dict[int, set[int]]:
    """Model id -> ids of the Examples the execution that produced it read (input key "examples")."""
    producer = {
        event.execution_id: event.artifact_id
        for event in store.get_events_by_artifact_ids(model_ids)
        if event.type == metadata_store_pb2.Event.OUTPUT
    }
    examples: dict[int, set[int]] = {model_id: set() for model_id in model_ids}
    for event in store.get_events_by_execution_ids(list(producer)):
        steps = event.path.steps
        if event.type == metadata_store_pb2.Event.INPUT and steps and steps[0].key == EXAMPLES:
            examples[producer[event.execution_id]].add(event.artifact_id)
    return examples


class LatestBlessedModelFromOtherExamplesStrategy(resolver.ResolverStrategy):
    """The newest blessed Model not trained on the current run's Examples (`examples` input)."""

    def resolve_artifacts(self, store, input_dict: dict[str, list[types.Artifact]]):
        models, blessings = input_dict.get(MODEL, []), input_dict.get(MODEL_BLESSING, [])
        current = {examples.id for examples in input_dict.get(EXAMPLES, [])}
        blessing_of = {
            b.get_int_custom_property(CURRENT_MODEL_ID): b
            for b in blessings
            if b.get_int_custom_property(BLESSED) == 1
        }
        candidates = [m.id for m in models if m.id in blessing_of]
        chosen = choose_base_model(
            candidates, set(blessing_of), training_examples(store, candidates) if candidates else {}, current
        )
        result = {key: [] for key in input_dict}
        if chosen is not None:
            result[MODEL] = [m for m in models if m.id == chosen]
            result[MODEL_BLESSING] = [blessing_of[chosen]]
        return result
