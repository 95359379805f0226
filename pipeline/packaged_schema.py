"""ImportSchemaGen reading the curated schema shipped inside this package, wherever the step runs.

The compiled `schema_file` is package-relative (`pipeline/schema/schema.pbtxt`) and resolved in the step's own
process. An absolute path would name the compiling machine's install, which a Kubeflow pod does not have.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Any

from tfx.components.schema_gen.import_schema_gen import executor as import_schema_gen
from tfx.types import standard_component_specs

PACKAGED_SCHEMA = "pipeline/schema/schema.pbtxt"


def packaged_file(relative: str) -> str:
    """The installed path of `package/path/inside`, e.g. `pipeline/schema/schema.pbtxt`."""
    package, _, inside = relative.partition("/")
    return str(resources.files(package).joinpath(inside))


class Executor(import_schema_gen.Executor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        path = exec_properties[standard_component_specs.SCHEMA_FILE_KEY]
        if not os.path.isabs(path) and "://" not in path:  # an explicit local or remote file is read as is
            path = packaged_file(path)
        properties = {**exec_properties, standard_component_specs.SCHEMA_FILE_KEY: path}
        super().Do(input_dict, output_dict, properties)
