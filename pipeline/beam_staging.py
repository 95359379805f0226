"""Skips TFX's `tfx_ephemeral` sdist where Beam's workers already run in this environment.

Before every Beam step TFX repackages its own installation as an sdist for remote workers, unless the Beam
options already say how workers get their code (`tfx.utils.dependency_utils.make_beam_dependency_flags`).
The DirectRunner, a LOOPBACK worker and an EXTERNAL worker pool on loopback never read it: it costs seconds
of CPU per Beam step (3.6 s timed alone here) and leaves a temporary directory behind each time. A remote
runner still gets it, though it needs an image with pin2vec itself anyway (docs/DISTRIBUTED.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

LOCAL_RUNNERS = frozenset({"directrunner", "direct", "bundlebaseddirectrunner", "swappingrunner"})
LOOPBACK_HOSTS = ("localhost:", "127.0.0.1:", "[::1]:")
# The Beam options that tell TFX (and Beam's stager) how workers get their code.
DEPENDENCY_OPTIONS = (
    "extra_packages",
    "setup_file",
    "requirements_file",
    "worker_harness_container_image",
    "sdk_container_image",
)


def workers_share_this_environment(beam_args: Sequence[str]) -> bool:
    """True when every Beam worker imports from this process's Python environment."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(flags=list(beam_args)).get_all_options()
    runner = str(options.get("runner") or "DirectRunner").lower()
    if runner in LOCAL_RUNNERS:
        return True
    environment = str(options.get("environment_type") or "").upper()
    if environment == "LOOPBACK":
        return True
    config = str(options.get("environment_config") or "")
    return environment == "EXTERNAL" and config.startswith(LOOPBACK_HOSTS)


def with_worker_image(beam_args: Sequence[str], image: str) -> list[str]:
    """A compiled pipeline's Beam options with `--sdk_container_image=image` added for remote workers.

    TFX's fallback, an sdist of TFX alone, lacks this package's DoFns, so Dataflow or Flink workers would fail
    to unpickle them; the pipeline's own image has everything. Options that already say how workers get
    their code, and local runners, are left as they are.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not args or workers_share_this_environment(args):
        return args
    options = PipelineOptions(flags=args).get_all_options()
    if any(options.get(name) for name in DEPENDENCY_OPTIONS):
        return args
    return [*args, f"--sdk_container_image={image}"]


@contextlib.contextmanager
def no_package_staging_for_local_workers(beam_args: Sequence[str]) -> Iterator[None]:
    """While the pipeline runs, TFX's Beam executors pass their options through unchanged when the workers
    are local; otherwise TFX's own staging stays in place."""
    from tfx.utils import dependency_utils

    if not workers_share_this_environment(beam_args):
        yield
        return
    build_sdist = dependency_utils.make_beam_dependency_flags
    dependency_utils.make_beam_dependency_flags = list
    try:
        yield
    finally:
        dependency_utils.make_beam_dependency_flags = build_sdist
