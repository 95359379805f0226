"""Training with `tf.distribute.ParameterServerStrategy`: embedding tables sharded over parameter servers.

Selected by `run_fn` when TF_CONFIG describes a cluster with a "ps" job (see docs/DISTRIBUTED.md); without
one the single-process path in run.py runs unchanged. Roles, as TF_CONFIG's task type says:
- "ps" and "worker": start a `tf.distribute.Server` and serve until the job ends (`serve_forever`);
- "chief": the coordinator. It builds the same `Pin2VecModel` under the strategy, so the item table, the
  softmax weights and their optimizer slots are partitioned along the vocabulary over the ps tasks
  (`MinSizePartitioner`), and a `ClusterCoordinator` dispatches training steps to the workers, each reading
  its own share of the batches.
After training, the coordinator copies the sharded values into a plain single-process model, so the
exported SavedModel is the same as the single-process one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tensorflow as tf
from absl import logging

from trainer_module.model import Pin2VecModel, TrainerSettings, build_model

# A shard holds at least this many bytes (4 MiB), so small tables are not split into tiny pieces.
MIN_SHARD_BYTES = 4 << 20


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in a parameter-server cluster, from TF_CONFIG."""

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def num_ps(self) -> int:
        return len(self.cluster.get("ps", []))

    @property
    def num_workers(self) -> int:
        return len(self.cluster.get("worker", []))


def parameter_server_task(tf_config: str | None) -> ClusterTask | None:
    """The cluster task when TF_CONFIG describes a parameter-server cluster, else None (single process).

    A malformed TF_CONFIG fails loudly: a cluster silently training single-process would be worse.
    """
    if not tf_config:
        return None
    try:
        config = json.loads(tf_config)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {tf_config[:200]!r}") from e
    cluster = config.get("cluster") or {}
    if not isinstance(cluster, Mapping) or not cluster.get("ps"):
        return None
    if not cluster.get("worker"):
        raise ValueError(f"TF_CONFIG has ps tasks but no worker tasks: {sorted(cluster)}")
    if not cluster.get("chief"):
        raise ValueError(f"TF_CONFIG has ps tasks but no chief (the coordinator): {sorted(cluster)}")
    task = config.get("task") or {}
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in ("chief", "worker", "ps"):
        raise ValueError(f"TF_CONFIG task type must be chief, worker or ps, got {task_type!r}")
    if not 0 <= int(task_index) < len(cluster[task_type]):
        raise ValueError(
            f"TF_CONFIG task index {task_index} out of range for {len(cluster[task_type])} tasks"
        )
    return ClusterTask({k: list(v) for k, v in cluster.items()}, task_type, int(task_index))


def serve_forever(task: ClusterTask) -> None:
    """Runs this worker or ps task's server until the process is stopped."""
    server = tf.distribute.Server(
        tf.train.ClusterSpec(task.cluster),
        job_name=task.task_type,
        task_index=task.task_index,
        protocol="grpc",
        start=True,
    )
    server.join()


def make_strategy(
    task: ClusterTask, min_shard_bytes: int = MIN_SHARD_BYTES
) -> tf.distribute.ParameterServerStrategy:
    """The strategy for the coordinator, its tables partitioned along the vocabulary over the ps tasks."""
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(task.cluster), task_type="chief", task_id=0, rpc_layer="grpc"
    )
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=task.num_ps
    )
    return tf.distribute.ParameterServerStrategy(resolver, variable_partitioner=partitioner)


def _shards(variable) -> list:
    return list(getattr(variable, "variables", [variable]))


def to_single_process(
    model: Pin2VecModel, settings: TrainerSettings, sampler_file: str | None
) -> Pin2VecModel:
    """A plain model holding the trained (possibly sharded) values, for the usual export."""
    plain = build_model(model.num_classes, settings, sampler_file)
    for target, source in (
        (plain.item_table.embeddings, model.item_table.embeddings),
        (plain.hidden_bias, model.hidden_bias),
        (plain.softmax_weights, model.softmax_weights),
        (plain.softmax_biases, model.softmax_biases),
    ):
        target.assign(tf.concat([tf.convert_to_tensor(s) for s in _shards(source)], axis=0))
    return plain


# (train, eval) builders of one pass of (items, labels) batches; eval may be None.
DatasetFns = tuple[Callable[[], tf.data.Dataset], Callable[[], tf.data.Dataset] | None]


def count_batches(dataset_fn: Callable[[], tf.data.Dataset]) -> int:
    return int(dataset_fn().reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def train_with_parameter_servers(
    task: ClusterTask,
    num_classes: int,
    settings: TrainerSettings,
    sampler_file: str | None,
    dataset_fns: Callable[[], DatasetFns],
    steps_per_epoch: int | None = None,
    min_shard_bytes: int = MIN_SHARD_BYTES,
) -> tuple[Pin2VecModel, dict[str, list[float]], int]:
    """Trains on the cluster; returns a single-process model with the trained values, the history and
    the number of shards the item table had.

    `dataset_fns()` returns the (train, eval or None) builders of one pass of (items, labels) batches; it
    is called in the strategy's scope, so a `StaticHashTable` it creates (the vocabulary lookup) is copied
    to every worker rather than looked up on the coordinator. Each worker shards a pass by its pipeline id.
    `steps_per_epoch` defaults to the batches in one pass divided over the workers.
    """
    strategy = make_strategy(task, min_shard_bytes)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    with strategy.scope():
        model = build_model(num_classes, settings, sampler_file)
        train_dataset_fn, eval_dataset_fn = dataset_fns()

    def per_worker(dataset_fn):
        def make(input_context: tf.distribute.InputContext):
            return (
                dataset_fn()
                .shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
                .repeat()
            )

        return coordinator.create_per_worker_dataset(lambda: strategy.distribute_datasets_from_function(make))

    @tf.function
    def train_step(iterator):
        return strategy.run(lambda batch: tf.reduce_mean(model.train_batch(batch)), args=(next(iterator),))

    @tf.function
    def eval_step(iterator):
        return strategy.run(lambda batch: tf.reduce_mean(model.evaluate_batch(batch)), args=(next(iterator),))

    workers = max(task.num_workers, 1)
    if steps_per_epoch is None:
        steps_per_epoch = max(1, math.ceil(count_batches(train_dataset_fn) / workers))
    eval_steps = max(1, math.ceil(count_batches(eval_dataset_fn) / workers)) if eval_dataset_fn else 0
    train_iterator = iter(per_worker(train_dataset_fn))
    eval_iterator = iter(per_worker(eval_dataset_fn)) if eval_dataset_fn else None
    history: dict[str, list[float]] = {"loss": []}
    for _ in range(settings.epochs):
        losses = [coordinator.schedule(train_step, args=(train_iterator,)) for _ in range(steps_per_epoch)]
        coordinator.join()
        history["loss"].append(float(sum(float(r.fetch()) for r in losses) / len(losses)))
        if eval_iterator is not None:
            losses = [coordinator.schedule(eval_step, args=(eval_iterator,)) for _ in range(eval_steps)]
            coordinator.join()
            history.setdefault("val_loss", []).append(
                float(sum(float(r.fetch()) for r in losses) / len(losses))
            )
    logging.info("Item table trained in %d shard(s)", len(_shards(model.item_table.embeddings)))
    return (
        to_single_process(model, settings, sampler_file),
        history,
        len(_shards(model.item_table.embeddings)),
    )


if __name__ == "__main__":  # a worker or ps process outside TFX: `python -m trainer_module.distributed`
    cluster_task = parameter_server_task(os.environ.get("TF_CONFIG"))
    if cluster_task is None or cluster_task.task_type == "chief":
        raise SystemExit("TF_CONFIG must describe a parameter-server cluster and a worker or ps task")
    serve_forever(cluster_task)
