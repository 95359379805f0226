"""A run's summary reads that run's own executions: run_local names the TFX pipeline run, and latest_outputs
keeps to it even when another run wrote newer artifacts to the same ML Metadata store."""

import os

from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.types import standard_artifacts

from pipeline.local_runner import _KnownRunIdRunner, log_file_name
from pipeline.metadata import custom_value, latest_outputs


@tfx.dsl.components.component
def Marker(name: tfx.dsl.components.Parameter[str], marked: OutputArtifact[standard_artifacts.String]):
    marked.set_string_custom_property("run", name)


def _pipeline(root: str, config, run_name: str, cache: bool = False):
    return tfx.dsl.Pipeline(
        pipeline_name="p",
        pipeline_root=root,
        components=[Marker(name=run_name)],
        metadata_connection_config=config,
        enable_cache=cache,
    )


def test_each_run_reads_its_own_outputs(tmp_path):
    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite"))
    root = str(tmp_path / "root")
    _KnownRunIdRunner("run-a").run(_pipeline(root, config, "a"))
    _KnownRunIdRunner("run-b").run(_pipeline(root, config, "b"))  # newer, as a concurrent run's would be

    def marked_by(run_id):
        return custom_value(latest_outputs(config, "p", run_id=run_id)[("Marker", "marked")], "run")

    assert marked_by("run-a") == "a"
    assert marked_by("run-b") == "b"
    assert marked_by(None) == "b"  # without a run id: the newest over all runs
    assert latest_outputs(config, "p", run_id="never-ran") == {}
    _KnownRunIdRunner("run-c").run(_pipeline(root, config, "b", cache=True))  # run-b's output, from cache
    assert marked_by("run-c") == "b"


def test_log_files_are_unique_per_run():
    assert log_file_name(1.0e9, 11) != log_file_name(1.0e9, 12)
    assert log_file_name(1.0e9, 11).endswith("-11.log") and os.sep not in log_file_name(1.0e9, 11)
