"""Executions a killed run left RUNNING: marked FAILED in a real ML Metadata store, half-written outputs
removed, published ones and other pipelines' left alone."""

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.stale_executions import NOTE_PROPERTY, fail_stale_executions


def _store(tmp_path):
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "metadata.sqlite")
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config, metadata_store.MetadataStore(config)


def _context(store, type_id, name) -> int:
    found = [c.id for c in store.get_contexts() if c.type_id == type_id and c.name == name]
    return found[0] if found else store.put_contexts([mlmd.Context(type_id=type_id, name=name)])[0]


def _execution(store, types, pipeline, node, state, outputs):
    """An execution in `state` of `node` of `pipeline`, with output artifacts {uri: artifact state}: in the
    pipeline's context and in the node's ('<pipeline>.<node>'), as TFX records them."""
    context_id = _context(store, types["node"], f"{pipeline}.{node}")
    pipeline_id = _context(store, types["pipeline"], pipeline)
    artifacts = [mlmd.Artifact(type_id=types["artifact"], uri=uri, state=s) for uri, s in outputs.items()]
    artifact_ids = store.put_artifacts(artifacts) if artifacts else []
    [execution_id] = store.put_executions(
        [mlmd.Execution(type_id=types["execution"], last_known_state=state)]
    )
    store.put_attributions_and_associations(
        [mlmd.Attribution(artifact_id=a, context_id=context_id) for a in artifact_ids],
        [mlmd.Association(execution_id=execution_id, context_id=c) for c in (context_id, pipeline_id)],
    )
    store.put_events(
        [mlmd.Event(artifact_id=a, execution_id=execution_id, type=mlmd.Event.OUTPUT) for a in artifact_ids]
    )
    return execution_id, artifact_ids


def test_a_killed_runs_executions_are_failed_and_their_outputs_removed(tmp_path):
    config, store = _store(tmp_path)
    types = {
        "node": store.put_context_type(mlmd.ContextType(name="node")),
        "pipeline": store.put_context_type(mlmd.ContextType(name="pipeline")),
        "execution": store.put_execution_type(mlmd.ExecutionType(name="Trainer")),
        "artifact": store.put_artifact_type(mlmd.ArtifactType(name="Model")),
    }
    root = tmp_path / "root"
    half, published, elsewhere = (
        root / "Trainer" / "model" / "7",
        root / "Trainer" / "run" / "7",
        tmp_path / "x",
    )
    for directory in (half, published, elsewhere):
        directory.mkdir(parents=True)
    killed, (half_id, published_id, elsewhere_id) = _execution(
        store,
        types,
        "p",
        "Trainer",
        mlmd.Execution.RUNNING,
        {
            str(half): mlmd.Artifact.PENDING,
            str(published): mlmd.Artifact.LIVE,
            str(elsewhere): mlmd.Artifact.PENDING,
        },
    )
    done, _ = _execution(store, types, "p", "Transform", mlmd.Execution.COMPLETE, {})
    other, _ = _execution(store, types, "q", "Trainer", mlmd.Execution.RUNNING, {})
    # Another pipeline sharing the store whose node contexts start with 'p.' ('p.b.Trainer'): not p's.
    dotted, _ = _execution(store, types, "p.b", "Trainer", mlmd.Execution.RUNNING, {})

    stale = fail_stale_executions(config, "p", str(root))

    assert [(s.execution_id, s.node, s.removed) for s in stale] == [(killed, "Trainer", (str(half),))]
    states = {e.id: e.last_known_state for e in store.get_executions_by_id([killed, done, other, dotted])}
    assert states == {
        killed: mlmd.Execution.FAILED,
        done: mlmd.Execution.COMPLETE,
        other: mlmd.Execution.RUNNING,
        dotted: mlmd.Execution.RUNNING,
    }
    assert "died" in store.get_executions_by_id([killed])[0].custom_properties[NOTE_PROPERTY].string_value
    artifacts = {a.id: a.state for a in store.get_artifacts_by_id([half_id, published_id, elsewhere_id])}
    assert artifacts[half_id] == mlmd.Artifact.ABANDONED and artifacts[published_id] == mlmd.Artifact.LIVE
    assert not half.exists() and published.exists()
    assert elsewhere.exists()  # outside the pipeline root: never removed
    assert fail_stale_executions(config, "p", str(root)) == []  # nothing left unfinished
