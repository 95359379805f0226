"""SessionExampleGen's driver: resolves the input's spans at run time, before TFX looks in its cache.

As TFX's own ExampleGen driver does: the launcher runs a component's driver before computing the cache key,
and the exec properties the driver returns are part of that key. So the spans a pattern names today, and a
fingerprint of their files, decide whether the pairs of an earlier run can be reused: an unchanged window is
answered from the cache, a new day reruns. Inputs without span placeholders pass through unchanged.

Runners that do not run Python drivers (Kubeflow Pipelines v2) leave `span_selection` empty; the executor
then resolves the pattern itself, in the pod, at run time.
"""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable import base_driver as ir_base_driver
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

from components.session_example_gen import input_files, spans_lib

# Exec property keys (the component spec uses the same names).
INPUT_PATH_KEY = "input_path"
INPUT_FINGERPRINT_KEY = "input_fingerprint"
RANGE_CONFIG_KEY = "range_config"
SPAN_SELECTION_KEY = "span_selection"


def resolve_exec_properties(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The exec properties of this run: for a span pattern, the chosen spans and their files' fingerprint."""
    pattern = exec_properties[INPUT_PATH_KEY]
    if not spans_lib.has_span_spec(pattern):
        return exec_properties
    range_config = spans_lib.range_config_from_json(exec_properties.get(RANGE_CONFIG_KEY) or "")
    selection = spans_lib.resolve_pattern(pattern, range_config)
    logging.info(
        "SessionExampleGen %s: spans %s (%d files)%s",
        pattern,
        ", ".join(selection.labels),
        len(selection.files),
        f"; missing in the window: {', '.join(selection.missing_labels)}" if selection.missing else "",
    )
    resolved = dict(exec_properties)
    resolved[SPAN_SELECTION_KEY] = selection.to_json()
    resolved[INPUT_FINGERPRINT_KEY] = input_files.fingerprint_files(selection.files)
    return resolved


class SpanDriver(base_driver.BaseDriver, ir_base_driver.BaseDriver):
    """Fills `span_selection` and `input_fingerprint` before the cache lookup (see the module docstring)."""

    def __init__(self, metadata_handle):
        base_driver.BaseDriver.__init__(self, metadata_handle)
        ir_base_driver.BaseDriver.__init__(self, metadata_handle)

    def run(self, execution_info: data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
        result = driver_output_pb2.DriverOutput()
        for key, value in resolve_exec_properties(dict(execution_info.exec_properties)).items():
            if value is not None:
                data_types_utils.set_metadata_value(result.exec_properties[key], value)
        return result
