"""TFX's sdist of itself is skipped only where Beam's workers import from this environment."""

import pytest
from tfx.utils import dependency_utils

from pipeline.beam_staging import (
    no_package_staging_for_local_workers,
    with_worker_image,
    workers_share_this_environment,
)
from pipeline.config import IN_PROCESS_BEAM_ARGS, MULTI_PROCESS_BEAM_ARGS


@pytest.mark.parametrize(
    "beam_args",
    [
        [],
        list(IN_PROCESS_BEAM_ARGS),
        list(MULTI_PROCESS_BEAM_ARGS),
        ["--runner=PortableRunner", "--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"],
        ["--runner=PortableRunner", "--environment_type=EXTERNAL", "--environment_config=127.0.0.1:50000"],
        ["--runner=FlinkRunner", "--environment_type=EXTERNAL", "--environment_config=localhost:50000"],
    ],
)
def test_local_workers_share_this_environment(beam_args):
    assert workers_share_this_environment(beam_args)


@pytest.mark.parametrize(
    "beam_args",
    [
        ["--runner=DataflowRunner", "--project=p", "--region=us-central1"],
        ["--runner=FlinkRunner", "--flink_master=flink:8081", "--environment_type=DOCKER"],
        ["--runner=PortableRunner", "--environment_type=EXTERNAL", "--environment_config=workers:50000"],
    ],
)
def test_remote_workers_do_not(beam_args):
    assert not workers_share_this_environment(beam_args)


def test_local_runs_pass_options_through_unchanged_and_restore_tfx_after():
    args = list(IN_PROCESS_BEAM_ARGS)
    original = dependency_utils.make_beam_dependency_flags
    with no_package_staging_for_local_workers(args):
        assert dependency_utils.make_beam_dependency_flags(args) == args
    assert dependency_utils.make_beam_dependency_flags is original


def test_remote_runs_keep_tfx_staging():
    original = dependency_utils.make_beam_dependency_flags
    with no_package_staging_for_local_workers(["--runner=DataflowRunner", "--project=p"]):
        assert dependency_utils.make_beam_dependency_flags is original


def test_a_compiled_pipeline_on_remote_workers_runs_them_in_its_own_image():
    dataflow = ["--runner=DataflowRunner", "--project=p"]
    assert with_worker_image(dataflow, "img:1") == [*dataflow, "--sdk_container_image=img:1"]


@pytest.mark.parametrize(
    "beam_args",
    [
        [],
        list(IN_PROCESS_BEAM_ARGS),
        ["--runner=DataflowRunner", "--setup_file=./setup.py"],
        ["--runner=DataflowRunner", "--sdk_container_image=mine:2"],
    ],
)
def test_local_runners_and_given_dependencies_are_left_alone(beam_args):
    assert with_worker_image(beam_args, "img:1") == beam_args
