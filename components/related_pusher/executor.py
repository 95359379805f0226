"""Thin executor: checks the blessings, then publishes what push_policy allows as one version."""

from __future__ import annotations

import os
from typing import Any

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.related_pusher import push_policy
from formats import evaluation_result, push_records, serving_layout
from formats.settings_codec import decode_settings

PUSH_CONFIG_KEY = "push_config"  # JSON of push_policy.PushSettings; absent: the defaults (gates off)


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        model = artifact_utils.get_single_instance(input_dict["model"])
        blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        index = artifact_utils.get_single_instance(input_dict["index"])
        next_index = (input_dict.get("next_index") or [None])[0]
        pushed = artifact_utils.get_single_instance(output_dict["pushed_model"])
        base = exec_properties["serving_base_dir"]

        reasons = push_policy.refusal_reasons(
            model_blessed=blessing.get_int_custom_property("blessed") == 1,
            index_blessed=index.get_int_custom_property("blessed") == 1,
            index_recall=index.get_float_custom_property("recall_at_k"),
        )
        if next_index is not None and next_index.get_int_custom_property("blessed") != 1:
            reasons += push_policy.refusal_reasons(
                model_blessed=True,
                index_blessed=False,
                index_recall=next_index.get_float_custom_property("recall_at_k"),
                index_name="pin2vec (next-engagement)",
            )
        available = {
            name: (input_dict.get(name) or [None])[0]
            for name in (
                serving_layout.COOCCURRENCE_MODEL,
                serving_layout.BOARD_MODEL,
                serving_layout.COLDSTART_MODEL,
                serving_layout.BLEND_MODEL,
                serving_layout.EVALUATION_MODEL,
            )
        }
        available = {name: artifact.uri for name, artifact in available.items() if artifact is not None}
        available[serving_layout.PIN2VEC_SIMILAR_MODEL] = index.uri
        if next_index is not None:
            available[serving_layout.PIN2VEC_MODEL] = next_index.uri
        available[serving_layout.EMBEDDING_MODEL] = path_utils.serving_model_path(model.uri)
        chosen = push_policy.models_to_push(available, refused=bool(reasons))
        if not chosen:
            logging.warning("Not pushing model %s: %s", model.uri, "; ".join(reasons))
            pushed.set_int_custom_property("pushed", 0)
            pushed.set_string_custom_property("not_pushed_reason", "; ".join(reasons))
            return
        sources = {name: available[name] for name in chosen}
        evaluation = read_evaluation(sources.get(serving_layout.EVALUATION_MODEL))
        default = push_policy.default_source(evaluation, sources)
        served = {"default_source": default, "models": sorted(sources), "kept_back": "; ".join(reasons)}
        provenance = {"model_uri": model.uri, **{f"{name}_uri": uri for name, uri in sources.items()}}
        settings = decode_settings(
            push_policy.PushSettings, exec_properties.get(PUSH_CONFIG_KEY), PUSH_CONFIG_KEY
        )
        if evaluation and default:
            figure = evaluation_result.neighbour_overlap(evaluation, default)
            if figure.overlap_at_10 is not None:
                pushed.set_float_custom_property("neighbour_overlap_at_10", figure.overlap_at_10)
        refusal = push_policy.neighbour_overlap_refusal(evaluation, default, settings)
        if refusal and not already_newest(base, provenance):
            logging.warning("Not pushing model %s: %s", model.uri, refusal)
            pushed.set_int_custom_property("pushed", 0)
            pushed.set_string_custom_property("not_pushed_reason", refusal)
            return
        extra = {serving_layout.EVALUATION_MODEL: {serving_layout.SERVED_SOURCES_FILE: served}}
        result = serving_layout.publish_version(base, sources, provenance, extra)
        version = result.version
        if result.already_serving:
            logging.info(
                "Model %s and its sources are already serving as version %d%s",
                model.uri,
                version,
                f" (published what a killed push had left out: {', '.join(result.completed)})"
                if result.completed
                else "",
            )
        else:
            logging.info("Pushed version %d of %s under %s", version, ", ".join(sources), base)
        if reasons:
            logging.warning(
                "The model %s was kept back (%s); pushed what does not depend on it (%s), serving answers "
                "from %s",
                model.uri,
                "; ".join(reasons),
                ", ".join(sources),
                default,
            )
            pushed.set_string_custom_property("not_pushed_reason", "; ".join(reasons))
        pushed.set_int_custom_property("pushed", 1)
        pushed.set_string_custom_property("pushed_destination", base)
        pushed.set_int_custom_property("pushed_version", version)
        pushed.set_string_custom_property("pushed_models", ",".join(sorted(sources)))
        pushed.set_string_custom_property("default_source", default or "")


def already_newest(serving_dir: str, provenance: dict) -> bool:
    """Whether these artifacts are the newest committed version already (a rerun: nothing would change)."""
    records = push_records.committed(serving_dir)
    return bool(records) and records[max(records)].get("provenance") == provenance


def read_evaluation(directory: str | None) -> dict | None:
    """The evaluation.json the version's default source is chosen from, if one was pushed."""
    if directory is None or not os.path.isfile(os.path.join(directory, evaluation_result.EVALUATION_FILE)):
        return None
    return evaluation_result.read_evaluation(directory).raw
