"""Row matching on a vocabulary small enough to check by hand."""

import numpy as np
import pytest

from trainer_module.row_matching import RowMatch, carry_over_rows

OLD_IDS = [b"a", b"b", b"c", b"d"]  # row order of the base model; row 4 is its OOV bucket
NEW_IDS = [b"c", b"e", b"a"]  # the new vocabulary: c and a moved, e is new, b and d vanished


def _old_rows():
    return {
        "table": np.arange(10, dtype=np.float32).reshape(5, 2),  # rows [0,1] [2,3] [4,5] [6,7] [8,9]
        "bias": np.array([10.0, 11.0, 12.0, 13.0, 14.0], dtype=np.float32),
    }


def _fresh_rows():
    return {"table": np.full((4, 2), -1.0, dtype=np.float32), "bias": np.full(4, -1.0, dtype=np.float32)}


def test_known_items_keep_their_rows_by_id_new_ones_keep_their_initial_values():
    old, fresh = _old_rows(), _fresh_rows()
    arrays, match = carry_over_rows(OLD_IDS, old, NEW_IDS, fresh, num_oov_buckets=1)
    # c: old row 2 -> new row 0; a: old row 0 -> new row 2; e (new row 1) keeps its initialisation.
    np.testing.assert_array_equal(arrays["table"], [[4, 5], [-1, -1], [0, 1], [8, 9]])
    np.testing.assert_array_equal(arrays["bias"], [12, -1, 10, 14])  # the OOV row carried by position
    assert match == RowMatch(carried_over=2, new=1, dropped=2)
    # Pure: the inputs are unchanged.
    np.testing.assert_array_equal(fresh["table"], np.full((4, 2), -1.0))
    np.testing.assert_array_equal(old["table"], np.arange(10).reshape(5, 2))


def test_identical_and_disjoint_vocabularies():
    arrays, match = carry_over_rows(
        OLD_IDS,
        _old_rows(),
        OLD_IDS,
        {"table": np.zeros((5, 2), np.float32), "bias": np.zeros(5, np.float32)},
        num_oov_buckets=1,
    )
    np.testing.assert_array_equal(arrays["table"], _old_rows()["table"])
    assert match == RowMatch(carried_over=4, new=0, dropped=0)
    arrays, match = carry_over_rows(OLD_IDS, _old_rows(), [b"x", b"y", b"z"], _fresh_rows(), 1)
    np.testing.assert_array_equal(arrays["table"][:3], np.full((3, 2), -1.0))
    assert match == RowMatch(carried_over=0, new=3, dropped=4)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda old, fresh: old.update(table=np.zeros((3, 2), np.float32)), "has 3 rows for 4 items"),
        (lambda old, fresh: fresh.update(table=np.zeros((4, 3), np.float32)), r"rows of shape \(2,\)"),
        (lambda old, fresh: fresh.pop("bias"), "differ from the model's"),
    ],
)
def test_mismatched_arrays_fail_naming_the_array(change, message):
    old, fresh = _old_rows(), _fresh_rows()
    change(old, fresh)
    with pytest.raises(ValueError, match=message):
        carry_over_rows(OLD_IDS, old, NEW_IDS, fresh, num_oov_buckets=1)


def test_a_base_vocabulary_with_a_repeated_id_is_refused():
    old = {"table": np.zeros((6, 2), np.float32), "bias": np.zeros(6, np.float32)}
    with pytest.raises(ValueError, match="twice"):
        carry_over_rows([*OLD_IDS, b"a"], old, NEW_IDS, _fresh_rows(), num_oov_buckets=1)
