"""A short reading of the Trainer's loss curves, in words, for the run report: a chart alone leaves a new user
to guess whether "still falling" or "validation rising" is good or bad news, and what to change."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

STILL_FALLING = 0.01
"""The last epoch cut the training loss by more than this share: it has not levelled off, more epochs may
help. Below it, an epoch buys less than 1% of loss, which at the default 25 epochs no longer moves HR@10."""

FLAT = 0.02
"""Training loss that moved less than this share between the first and the last epoch did not learn."""

RISE = 0.02
"""Validation loss more than this share above its lowest epoch has risen, beyond the epoch-to-epoch wobble of
the sampled-softmax loss on a held-out split (its negatives are drawn at random)."""


def _change(start: float, end: float) -> float:
    """Relative change from start to end (negative: it fell)."""
    return (end - start) / abs(start) if start else end - start


def _first_bad(values: Sequence[float]) -> int | None:
    return next((i for i, v in enumerate(values) if not math.isfinite(v)), None)


def _train_sentence(loss: Sequence[float]) -> str:
    epochs = len(loss)
    if epochs == 1:
        return (
            "One epoch only: there is no trend to read; train for more --epochs to see whether the loss "
            "falls."
        )
    overall, last = _change(loss[0], loss[-1]), _change(loss[-2], loss[-1])
    if overall > FLAT:
        return (
            f"Training loss rose from {loss[0]:.3f} to {loss[-1]:.3f} over {epochs} epochs, which is odd: "
            "the learning rate may be too high (lower --learning-rate)."
        )
    if abs(overall) < FLAT:
        return (
            f"Training loss barely moved ({loss[0]:.3f} -> {loss[-1]:.3f} over {epochs} epochs): the model "
            "is hardly learning; check --learning-rate and that the log repeats item pairs across users."
        )
    if -last > STILL_FALLING:
        return (
            f"Training loss was still falling at the end ({-last:.1%} in the last epoch, {loss[0]:.3f} -> "
            f"{loss[-1]:.3f}): more --epochs may help."
        )
    return (
        f"Training loss levelled off ({loss[0]:.3f} -> {loss[-1]:.3f}, under {STILL_FALLING:.0%} in the last "
        "epoch): more --epochs are unlikely to help."
    )


def _validation_sentence(loss: Sequence[float], val: Sequence[float]) -> str:
    if len(val) < 2:
        return ""
    best = min(range(len(val)), key=lambda i: val[i])
    risen = _change(val[best], val[-1])
    train_fell_since = len(loss) > best and _change(loss[best], loss[-1]) < -STILL_FALLING
    if best < len(val) - 1 and risen > RISE:
        if train_fell_since:
            return (
                f"Validation loss was lowest at epoch {best + 1} and rose {risen:.1%} by the end while "
                "training loss kept falling: the model fits the training pairs better than held-out users' "
                "(overfitting by this measure). The gate's HR@10, not this loss, decides; compare it with "
                "fewer --epochs."
            )
        return (
            f"Validation loss was lowest at epoch {best + 1} and rose {risen:.1%} by the end: later epochs "
            "did not help held-out users."
        )
    if abs(_change(val[0], val[-1])) < FLAT:
        return (
            f"Validation loss stayed flat ({val[0]:.3f} -> {val[-1]:.3f}): what the model learns from the "
            "training pairs carries little to held-out users."
        )
    return f"Validation loss fell too ({val[0]:.3f} -> {val[-1]:.3f}): no sign of overfitting."


def read_loss_curves(history: Mapping | None) -> str:
    """One or two sentences on the training (`loss`) and validation (`val_loss`) curves: still falling at the
    end (more epochs may help), validation rising while training falls (overfitting), flat or rising training
    loss (odd: say so), or diverged. Empty without a training loss."""
    history = history or {}
    loss = [float(v) for v in history.get("loss") or []]
    val = [float(v) for v in history.get("val_loss") or []]
    if not loss:
        return ""
    bad = _first_bad(loss)
    if bad is not None:
        return (
            f"Training loss became {loss[bad]} at epoch {bad + 1}: training diverged; lower --learning-rate."
        )
    sentences = [_train_sentence(loss)]
    bad = _first_bad(val)
    if bad is not None:
        sentences.append(f"Validation loss became {val[bad]} at epoch {bad + 1}, so it cannot be read.")
    else:
        sentences.append(_validation_sentence(loss, val))
    return " ".join(s for s in sentences if s)
