"""Which blessed model a Trainer warm-starts from: the newest one not trained on the examples it trains on.

TFX's stock `LatestBlessedModelStrategy` would hand a rerun on unchanged logs the model the previous run just
trained: a new input, so the Trainer (and everything after it) would retrain on the same data every time
instead of coming from the cache. Leaving out the models trained on the current Examples keeps a rerun's
inputs what they were: the first run on a day's examples and its rerun get the same base model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def choose_base_model(
    model_ids: Iterable[int],
    blessed_model_ids: set[int],
    examples_of_model: Mapping[int, set[int]],
    current_examples_ids: set[int],
) -> int | None:
    """The newest (highest id) blessed model whose training examples are none of `current_examples_ids`;
    None when there is none. `examples_of_model`: model id -> ids of the Examples its Trainer read."""
    for model_id in sorted(model_ids, reverse=True):
        if model_id in blessed_model_ids and not (
            examples_of_model.get(model_id, set()) & current_examples_ids
        ):
            return model_id
    return None
