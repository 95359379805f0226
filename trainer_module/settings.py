"""The Trainer's hyper-parameters, apart from the model so that settings can be built and checked (by the CLI,
before anything heavy loads) without importing TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from formats.settings_codec import settings_from_value

# Sparse-friendly choices: adagrad and sgd update only the rows a batch touches; see model.OPTIMIZERS.
OPTIMIZER_NAMES = ("adagrad", "sgd", "adam")


@dataclass(frozen=True)
class TrainerSettings:
    """Hyper-parameters, passed to the Trainer through `custom_config` as plain JSON values.

    Defaults chosen on validation queries by bench/sweep_trainer.py (docs/BENCHMARKS.md), never on the test.
    """

    embedding_dim: int = 128
    num_negatives: int = 64  # shared by the whole batch
    # Negatives drawn by count^this: word2vec's 0.75 (0 is uniform, 1 raw frequency). 0.5 trains the served
    # next-engagement scorer sooner but ties it after 20 epochs; 1.0 and <= 0 are worse (docs/BENCHMARKS.md).
    sampler_exponent: float = 0.75
    batch_size: int = 8192  # large: a step's fixed cost is spread over many pairs (bench/bench_quick.py)
    # The next-engagement scorer (what pin2vec serves) keeps improving to about 25 epochs, where cosine
    # neighbours peak at 10-15 and then drift down; at 5 it is worse than cosine (docs/BENCHMARKS.md,
    # "Trainer settings sweep": 20 configurations x 20 epochs, 4 of them to 40, on validation only).
    epochs: int = 25
    # Epochs of a warm start (a base model's rows carried over, trainer_module/warm_start.py). Chosen by
    # bench/bench_warm_start.py (docs/BENCHMARKS.md, "Warm start").
    warm_epochs: int = 3
    # Stop after the epoch that would pass this many pair updates (pairs x directions x epochs); 0: no cap.
    # Off by default: on the 20M-event log a 300M cap (4 epochs instead of 25) cut the Trainer to 397 s but
    # left the next-engagement scorer undertrained (test HR@10 0.364 against 0.478 for cosine neighbours;
    # docs/BENCHMARKS.md, "Scale-up at 20M"). For when time matters more than that.
    max_pair_updates: int = 0
    optimizer: str = "adagrad"  # one of OPTIMIZER_NAMES; adagrad updates only the rows a batch touches
    learning_rate: float = 0.05  # adagrad's, per pair (the loss is summed); adam wants ~0.002
    shuffle_buffer: int = 64  # blocks of batch_size examples shuffled across files; 0 turns shuffling off
    cache_input: bool = True  # keep parsed batches in a local temporary file after the first epoch
    symmetric_pairs: bool = True  # also train label -> item, as skip-gram does (doubles the pairs per epoch)
    vocabulary_min_count: int = 1  # pairs-level cut-off inside Transform; rare ids go to the OOV bucket
    seed: int = 42

    @classmethod
    def from_config(cls, config: dict | None) -> TrainerSettings:
        """From the Trainer's custom_config entry (plain JSON values, formats/settings_codec.py)."""
        config = {k: v for k, v in (config or {}).items() if k != "trainer_settings_version"}
        return settings_from_value(cls, config, "custom_config.trainer")

    def __post_init__(self):
        for name in ("embedding_dim", "num_negatives", "batch_size", "epochs", "warm_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainerSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_pair_updates < 0:
            raise ValueError(f"TrainerSettings.max_pair_updates must be >= 0, got {self.max_pair_updates}")
        if self.learning_rate <= 0:
            raise ValueError(f"TrainerSettings.learning_rate must be > 0, got {self.learning_rate}")
        if self.optimizer not in OPTIMIZER_NAMES:
            raise ValueError(
                f"TrainerSettings.optimizer must be one of {sorted(OPTIMIZER_NAMES)}, got {self.optimizer!r}"
            )
        if self.shuffle_buffer < 0:
            raise ValueError(f"TrainerSettings.shuffle_buffer must be >= 0, got {self.shuffle_buffer}")

    def planned_epochs(self, pair_updates_per_epoch: int, warm: bool) -> int:
        """`epochs` (`warm_epochs` when warm), no more than fit in `max_pair_updates`, and at least 1."""
        wanted = self.warm_epochs if warm else self.epochs
        if self.max_pair_updates == 0 or pair_updates_per_epoch <= 0:
            return wanted
        return max(1, min(wanted, self.max_pair_updates // pair_updates_per_epoch))
