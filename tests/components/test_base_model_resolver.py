"""The Trainer's base-model resolver on a real ML Metadata store: lineage decides, not artifact order."""

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from components.warm_start_trainer.base_model_resolver import LatestBlessedModelFromOtherExamplesStrategy


def _store():
    config = metadata_store_pb2.ConnectionConfig()
    config.fake_database.SetInParent()
    return metadata_store.MetadataStore(config)


def _put_artifact(store, type_name):
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=type_name))
    return store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id)])[0]


def _train(store, examples_id, model_id):
    """Records a Trainer execution that read `examples_id` and wrote `model_id`, as TFX records it."""
    type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Trainer"))
    [execution_id] = store.put_executions([metadata_store_pb2.Execution(type_id=type_id)])
    events = []
    for artifact_id, kind, key in (
        (examples_id, metadata_store_pb2.Event.INPUT, "examples"),
        (model_id, metadata_store_pb2.Event.OUTPUT, "model"),
    ):
        event = metadata_store_pb2.Event(artifact_id=artifact_id, execution_id=execution_id, type=kind)
        event.path.steps.add().key = key
        event.path.steps.add().index = 0
        events.append(event)
    store.put_events(events)


def _artifact(cls, artifact_id, **properties):
    artifact = cls()
    artifact.id = artifact_id
    for key, value in properties.items():
        artifact.set_int_custom_property(key, value)
    return artifact


def _resolve(store, models, blessed, examples_id):
    blessings = [
        _artifact(standard_artifacts.ModelBlessing, 100 + m, blessed=int(m in blessed), current_model_id=m)
        for m in models
    ]
    return LatestBlessedModelFromOtherExamplesStrategy().resolve_artifacts(
        store,
        {
            "model": [_artifact(standard_artifacts.Model, m) for m in models],
            "model_blessing": blessings,
            "examples": [_artifact(standard_artifacts.Examples, examples_id)],
        },
    )


def test_the_newest_blessed_model_trained_on_other_examples_is_the_base():
    store = _store()
    day_1, day_2 = _put_artifact(store, "Examples"), _put_artifact(store, "Examples")
    model_1, model_2 = _put_artifact(store, "Model"), _put_artifact(store, "Model")
    _train(store, day_1, model_1)
    _train(store, day_2, model_2)
    models = [model_1, model_2]

    # A rerun on day 2's examples gets day 1's model, as the run that trained model 2 did: cache hit.
    resolved = _resolve(store, models, {model_1, model_2}, day_2)
    assert [m.id for m in resolved["model"]] == [model_1]
    assert [b.get_int_custom_property("current_model_id") for b in resolved["model_blessing"]] == [model_1]
    # A new day gets the newest blessed model.
    day_3 = _put_artifact(store, "Examples")
    assert [m.id for m in _resolve(store, models, {model_1, model_2}, day_3)["model"]] == [model_2]
    # An unblessed model is never a base; nothing suitable means a cold start.
    assert [m.id for m in _resolve(store, models, {model_1}, day_3)["model"]] == [model_1]
    assert _resolve(store, models, {model_2}, day_2)["model"] == []
    assert _resolve(store, [], set(), day_2) == {"model": [], "model_blessing": [], "examples": []}
