"""The Python SDK worker a Flink TaskManager starts for each Beam step (Beam's PROCESS environment).

What Beam's container boot program does, without the container: the TaskManager runs this command with
`--id` and `--provision_endpoint`; it asks the runner's provision service for the pipeline options and the
control and logging endpoints of this worker, then becomes Beam's SDK harness (`sdk_worker_main`), which
connects back to the TaskManager and runs the step's DoFns. Each TaskManager owns and stops its own workers,
as on a cluster; the project's packages must be importable (pipeline/flink_cluster.py sets PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import sys


def worker_environment(
    worker_id: str, provision_endpoint: str, semi_persist_dir: str | None
) -> dict[str, str]:
    """The environment `sdk_worker_main` reads, from the runner's provision service."""
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc
    from google.protobuf import json_format, text_format

    with grpc.insecure_channel(provision_endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        request = beam_provision_api_pb2.GetProvisionInfoRequest()
        info = stub.GetProvisionInfo(request, metadata=[("worker_id", worker_id)], timeout=120).info
    env = dict(os.environ)
    env.update(
        WORKER_ID=worker_id,
        PIPELINE_OPTIONS=json_format.MessageToJson(info.pipeline_options),
        CONTROL_API_SERVICE_DESCRIPTOR=text_format.MessageToString(info.control_endpoint),
        LOGGING_API_SERVICE_DESCRIPTOR=text_format.MessageToString(info.logging_endpoint),
        RUNNER_CAPABILITIES=" ".join(info.runner_capabilities),
    )
    if semi_persist_dir:
        env["SEMI_PERSISTENT_DIRECTORY"] = semi_persist_dir
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n")[0])
    parser.add_argument("--id", required=True, help="the worker id the runner gave")
    parser.add_argument("--provision_endpoint", required=True, help="host:port of the provision service")
    parser.add_argument("--semi_persist_dir", default=None)
    args, _ = parser.parse_known_args(argv)
    env = worker_environment(args.id, args.provision_endpoint, args.semi_persist_dir)
    os.execve(sys.executable, [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], env)


if __name__ == "__main__":
    main()
