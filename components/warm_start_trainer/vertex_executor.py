"""The Trainer on Vertex AI Training: TFX's Vertex Trainer extension submits a CustomJob whose every replica
(chief, workers, parameter servers) runs this package's Trainer executor (`executor.Executor`, the stock
Trainer plus the warm-start record), and waits for the chief. Vertex sets TF_CONFIG in each replica;
`trainer_module.run.run_fn` serves (ps, worker) or coordinates (chief) from it."""

from __future__ import annotations

from typing import Any

from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer_executor

from components.warm_start_trainer import executor


class Executor(vertex_trainer_executor.GenericExecutor):
    def _GetExecutorClass(self):
        return executor.Executor

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        super().Do(input_dict, output_dict, exec_properties)
        # The chief recorded the start on its own copy of the artifact; its files are on shared storage.
        executor.record_start(output_dict["model"][0])
