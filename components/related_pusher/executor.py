"""Thin executor: checks both blessings, then publishes model and index under one new version."""

from __future__ import annotations

import os
from typing import Any

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.related_pusher import push_lib


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        model = artifact_utils.get_single_instance(input_dict["model"])
        blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        index = artifact_utils.get_single_instance(input_dict["index"])
        pushed = artifact_utils.get_single_instance(output_dict["pushed_model"])
        base = exec_properties["serving_base_dir"]

        reasons = push_lib.refusal_reasons(
            model_blessed=blessing.get_int_custom_property("blessed") == 1,
            index_blessed=index.get_int_custom_property("blessed") == 1,
            index_recall=index.get_float_custom_property("recall_at_k"),
        )
        if reasons:
            logging.warning("Not pushing model %s: %s", model.uri, "; ".join(reasons))
            pushed.set_int_custom_property("pushed", 0)
            pushed.set_string_custom_property("not_pushed_reason", "; ".join(reasons))
            return

        bases = {
            name: os.path.join(base, name) for name in (push_lib.EMBEDDING_MODEL, push_lib.RELATED_MODEL)
        }
        provenance = {"model_uri": model.uri, "index_uri": index.uri}
        version = push_lib.already_pushed_version(bases[push_lib.RELATED_MODEL], **provenance)
        if version is not None:
            logging.info("Model %s and its index are already serving as version %d", model.uri, version)
        else:
            version = push_lib.next_version(list(bases.values()))
            # The index first: a server following `embedding` never finds a version without its index.
            related_dir = push_lib.publish_directory(
                index.uri, bases[push_lib.RELATED_MODEL], version, provenance
            )
            embedding_dir = push_lib.publish_directory(
                path_utils.serving_model_path(model.uri), bases[push_lib.EMBEDDING_MODEL], version
            )
            logging.info("Pushed version %d: %s and %s", version, embedding_dir, related_dir)
        pushed.set_int_custom_property("pushed", 1)
        pushed.set_string_custom_property("pushed_destination", base)
        pushed.set_int_custom_property("pushed_version", version)
