"""TrainerSettings.planned_epochs: the pair-update cap that keeps large logs from training for hours."""

import pytest

from trainer_module.settings import TrainerSettings


@pytest.mark.parametrize(
    ("per_epoch", "warm", "expected"),
    [
        (1_000, False, 25),  # small log: every epoch fits the cap
        (10_000_000, False, 25),  # 25 x 10M = 250M <= 300M
        (61_000_000, False, 4),  # the 20M-event log: 4 x 61M = 244M
        (500_000_000, False, 1),  # one epoch over the cap still trains once
        (61_000_000, True, 3),  # warm: warm_epochs (3) fit
        (200_000_000, True, 1),
        (0, False, 25),  # unknown size: the epochs asked for
    ],
)
def test_planned_epochs_fit_the_cap(per_epoch, warm, expected):
    settings = TrainerSettings(epochs=25, warm_epochs=3, max_pair_updates=300_000_000)
    assert settings.planned_epochs(per_epoch, warm) == expected


def test_no_cap_trains_every_epoch_asked_for():
    assert TrainerSettings(epochs=25, max_pair_updates=0).planned_epochs(10**12, warm=False) == 25


def test_a_negative_cap_is_refused():
    with pytest.raises(ValueError, match="max_pair_updates must be >= 0"):
        TrainerSettings(max_pair_updates=-1)
