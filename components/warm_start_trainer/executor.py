"""The stock TFX Trainer, then how the model was started (warm or cold, items carried over, new and dropped)
copied from its `WarmStart/` files onto the Model artifact's custom properties in ML Metadata."""

from __future__ import annotations

from typing import Any

from tfx.components.trainer import executor as trainer_executor

from components.warm_start_trainer.properties import (
    BASE_MODEL,
    ITEMS_CARRIED_OVER,
    ITEMS_DROPPED,
    ITEMS_NEW,
    NOTE,
    WARM_START,
)
from trainer_module.warm_start_files import read_start_report


def record_start(model) -> None:
    """Copies how the model was started from its `WarmStart/` files onto the Model artifact."""
    started = read_start_report(model.uri)
    if started is None:  # a run_fn that writes no warm-start files
        return
    model.set_int_custom_property(WARM_START, int(started.warm))
    model.set_int_custom_property(ITEMS_CARRIED_OVER, started.carried_over)
    model.set_int_custom_property(ITEMS_NEW, started.new)
    model.set_int_custom_property(ITEMS_DROPPED, started.dropped)
    model.set_string_custom_property(BASE_MODEL, started.base_model)
    model.set_string_custom_property(NOTE, started.note)


class Executor(trainer_executor.GenericExecutor):
    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        super().Do(input_dict, output_dict, exec_properties)
        record_start(output_dict["model"][0])
