"""Warm start of a `Pin2VecModel` from a base Model artifact's `WarmStart/` files (rows matched by
trainer_module.row_matching).

A base model that cannot be used (no warm-start files, another embedding size, unreadable files) never fails
the run: the model starts cold and the reason is recorded on its artifact and printed in the run summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from absl import logging

from trainer_module.model import Pin2VecModel
from trainer_module.row_matching import RowMatch, carry_over_rows
from trainer_module.warm_start_files import (
    ModelState,
    StartReport,
    WarmStartFilesError,
    is_row_array,
    model_artifact_dir,
    read_model_state,
)


def _variables(model: Pin2VecModel) -> dict:
    """The trained variables and their optimizer slots ("<array>.<slot>", e.g. Adagrad's accumulators, and
    "optimizer.iterations"): a warm start resumes training where the base model stopped. With fresh Adagrad
    accumulators the carried rows would take the large first steps of a new model and lose what they knew
    (docs/BENCHMARKS.md, "Warm start")."""
    weights = {
        "item_embedding": model.item_table.embeddings,
        "hidden_bias": model.hidden_bias,
        "softmax_weights": model.softmax_weights,
        "softmax_biases": model.softmax_biases,
    }
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)  # creates the slots; a no-op once built
    slots = {"optimizer.iterations": optimizer.iterations}
    for name, variable in weights.items():
        # tf_keras names a slot "<slot>/<variable>", inside fit "<optimizer>/<slot>/<variable>".
        suffix = f"/{variable._shared_name}:0"
        for slot in optimizer.variables:
            if slot.name.endswith(suffix):
                slots[f"{name}.{slot.name[: -len(suffix)].rsplit('/', 1)[-1]}"] = slot
    return {**weights, **slots}


def model_arrays(model: Pin2VecModel) -> dict[str, np.ndarray]:
    """The trained arrays and optimizer slots `WarmStart/` keeps, by the names of warm_start_files."""
    return {name: variable.numpy() for name, variable in _variables(model).items()}


def assign_arrays(model: Pin2VecModel, arrays: Mapping[str, np.ndarray]) -> None:
    """Assigns the arrays given (by model_arrays' names); the others keep their values."""
    for name, variable in _variables(model).items():
        if name in arrays:
            variable.assign(arrays[name])


def model_state(model: Pin2VecModel, item_ids: Sequence[bytes], num_oov_buckets: int) -> ModelState:
    return ModelState(list(item_ids), model_arrays(model), num_oov_buckets)


def warm_start_from_state(
    model: Pin2VecModel, base: ModelState, item_ids: Sequence[bytes], num_oov_buckets: int
) -> RowMatch:
    """Assigns `model` the base state: rows matched by item id, shared arrays as they are. Optimizer slots
    the base does not have (trained with another optimizer) keep their initial values."""
    fresh = model_arrays(model)
    common = [
        name for name in fresh if name in base.arrays and base.arrays[name].shape[1:] == fresh[name].shape[1:]
    ]
    rows = [name for name in common if is_row_array(name)]
    arrays, match = carry_over_rows(
        base.item_ids,
        {name: base.arrays[name] for name in rows},
        item_ids,
        {name: fresh[name] for name in rows},
        num_oov_buckets,
    )
    arrays.update({name: base.arrays[name] for name in common if not is_row_array(name)})
    assign_arrays(model, arrays)
    return match


def warm_start_model(
    model: Pin2VecModel, base_model: str | None, item_ids: Sequence[bytes], num_oov_buckets: int
) -> StartReport:
    """Gives `model` (freshly built over `item_ids`) the base model's rows of every item both know. A cold
    start counts every item as new.

    `base_model`: the base Model's `Format-Serving` directory (TFX's `fn_args.base_model`), or None.
    """
    if not base_model:
        return StartReport(warm=False, new=len(item_ids))
    base_dir = model_artifact_dir(base_model)
    try:
        base = read_model_state(base_dir)
    except WarmStartFilesError as error:
        logging.warning("Starting cold: %s", error)
        return StartReport(warm=False, new=len(item_ids), base_model=base_dir, note=str(error))
    old_dim = base.arrays["item_embedding"].shape[1:]
    new_dim = tuple(model.item_table.embeddings.shape[1:])
    if old_dim != new_dim or base.num_oov_buckets != num_oov_buckets:
        note = (
            f"the base model {base_dir} has embeddings of shape {old_dim} and {base.num_oov_buckets} OOV "
            f"bucket(s), this run {new_dim} and {num_oov_buckets}; starting cold"
        )
        logging.warning(note)
        return StartReport(warm=False, new=len(item_ids), base_model=base_dir, note=note)
    match = warm_start_from_state(model, base, item_ids, num_oov_buckets)
    logging.info(
        "Warm start from %s: %d items carried over, %d new, %d dropped",
        base_dir,
        match.carried_over,
        match.new,
        match.dropped,
    )
    return StartReport(
        warm=True, carried_over=match.carried_over, new=match.new, dropped=match.dropped, base_model=base_dir
    )
