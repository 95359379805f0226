"""Warm start's one algorithm: the base model's rows moved to where the same items sit in a new vocabulary.

Transform orders the vocabulary by frequency, so an item's row number changes from one day to the next; rows
are matched by item id, never by position. Pure NumPy, so it is tested on a tiny vocabulary by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RowMatch:
    """How a new vocabulary relates to the base model's: what a warm start carried, started and dropped."""

    carried_over: int  # items of both vocabularies: their rows are the base model's
    new: int  # items only the new vocabulary has: their rows keep the model's own initialisation
    dropped: int  # items only the base model had: their rows are gone


def carry_over_rows(
    old_ids: Sequence[bytes],
    old_rows: Mapping[str, np.ndarray],
    new_ids: Sequence[bytes],
    fresh_rows: Mapping[str, np.ndarray],
    num_oov_buckets: int,
) -> tuple[dict[str, np.ndarray], RowMatch]:
    """New arrays: `fresh_rows` (the new model's initial values) with each item both vocabularies know
    given its row from `old_rows`, matched by id; the OOV rows (after the vocabulary) carried by position.

    Every array of `old_rows` has len(old_ids) + num_oov_buckets rows, every array of `fresh_rows` (same
    names) len(new_ids) + num_oov_buckets; row shapes must agree. Returns copies; the inputs are unchanged.
    """
    if set(old_rows) != set(fresh_rows):
        raise ValueError(f"base model arrays {sorted(old_rows)} differ from the model's {sorted(fresh_rows)}")
    for name, array in old_rows.items():
        fresh = fresh_rows[name]
        if array.shape[0] != len(old_ids) + num_oov_buckets:
            raise ValueError(
                f"base model array {name!r} has {array.shape[0]} rows for {len(old_ids)} items + "
                f"{num_oov_buckets} OOV"
            )
        if fresh.shape[0] != len(new_ids) + num_oov_buckets:
            raise ValueError(
                f"array {name!r} has {fresh.shape[0]} rows for {len(new_ids)} items + {num_oov_buckets} OOV"
            )
        if array.shape[1:] != fresh.shape[1:]:
            raise ValueError(
                f"base model array {name!r} has rows of shape {array.shape[1:]}, the model {fresh.shape[1:]}"
            )
    old_row_of = {item: row for row, item in enumerate(old_ids)}
    if len(old_row_of) != len(old_ids):
        raise ValueError("the base model's vocabulary lists an item id twice")
    new_rows, old_rows_matched = [], []
    for row, item in enumerate(new_ids):
        old_row = old_row_of.get(item)
        if old_row is not None:
            new_rows.append(row)
            old_rows_matched.append(old_row)
    new_rows.extend(range(len(new_ids), len(new_ids) + num_oov_buckets))
    old_rows_matched.extend(range(len(old_ids), len(old_ids) + num_oov_buckets))
    result = {}
    for name, fresh in fresh_rows.items():
        array = np.array(fresh, copy=True)
        array[new_rows] = old_rows[name][old_rows_matched]
        result[name] = array
    carried = len(new_rows) - num_oov_buckets
    return result, RowMatch(carried_over=carried, new=len(new_ids) - carried, dropped=len(old_ids) - carried)
