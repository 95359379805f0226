"""loss_reading: one or two sentences on hand-made loss curves, each case a reader should be told about."""

import pytest

from components.related_evaluator.loss_reading import read_loss_curves


def test_still_falling_at_the_end_suggests_more_epochs():
    reading = read_loss_curves({"loss": [6.0, 5.0, 4.5, 4.2, 4.0], "val_loss": [5.5, 5.0, 4.8, 4.6, 4.5]})
    assert reading.startswith("Training loss was still falling at the end (4.8% in the last epoch")
    assert "more --epochs may help" in reading
    assert reading.endswith("Validation loss fell too (5.500 -> 4.500): no sign of overfitting.")


def test_levelled_off_says_more_epochs_are_unlikely_to_help():
    reading = read_loss_curves({"loss": [6.0, 4.5, 4.1, 4.05, 4.04]})
    assert reading == (
        "Training loss levelled off (6.000 -> 4.040, under 1% in the last epoch): more --epochs are unlikely "
        "to help."
    )


def test_validation_rising_while_training_falls_is_called_overfitting():
    reading = read_loss_curves({"loss": [6.0, 5.0, 4.4, 4.0, 3.7], "val_loss": [5.0, 4.6, 4.7, 4.9, 5.1]})
    assert (
        "Validation loss was lowest at epoch 2 and rose 10.9% by the end while training loss kept falling"
        in (reading)
    )
    assert "overfitting" in reading and "fewer --epochs" in reading


def test_a_small_wobble_of_validation_loss_is_not_overfitting():
    reading = read_loss_curves({"loss": [6.0, 5.0, 4.4, 4.0, 3.7], "val_loss": [5.0, 4.6, 4.5, 4.49, 4.52]})
    assert "overfitting by this measure" not in reading
    assert "Validation loss fell too" in reading


def test_flat_and_rising_training_loss_are_called_odd():
    flat = read_loss_curves({"loss": [4.00, 3.99, 3.98, 3.99], "val_loss": [4.1, 4.1, 4.1, 4.1]})
    assert flat.startswith("Training loss barely moved (4.000 -> 3.990 over 4 epochs)")
    assert "Validation loss stayed flat (4.100 -> 4.100)" in flat
    rising = read_loss_curves({"loss": [4.0, 4.5, 5.2]})
    assert rising.startswith("Training loss rose from 4.000 to 5.200 over 3 epochs, which is odd")
    assert "--learning-rate" in rising


def test_diverged_single_epoch_and_empty_histories():
    assert read_loss_curves({"loss": [5.0, float("nan"), 4.0]}) == (
        "Training loss became nan at epoch 2: training diverged; lower --learning-rate."
    )
    assert read_loss_curves({"loss": [5.0]}).startswith("One epoch only")
    assert "Validation loss became inf at epoch 3" in read_loss_curves(
        {"loss": [6.0, 5.0, 4.0], "val_loss": [5.0, 4.0, float("inf")]}
    )
    assert read_loss_curves(None) == "" and read_loss_curves({"loss": []}) == ""


@pytest.mark.parametrize("sentences", [1, 2])
def test_the_reading_is_one_or_two_sentences(sentences):
    history = {"loss": [6.0, 5.0, 4.0]}
    if sentences == 2:
        history["val_loss"] = [5.0, 4.5, 4.2]
    assert read_loss_curves(history).count(". ") + 1 == sentences
