"""What a SessionExampleGen run counted (rows, bad rows by reason, drops, sessions, pairs per split), the one
summary line, and the checks that fail a run on those counts."""

from __future__ import annotations

from collections.abc import Mapping

from components.session_example_gen.event_rows import (
    BAD_ROW_REASONS,
    DROPPED_NONPOSITIVE_WEIGHT,
    DROPPED_OTHER_ACTION,
)
from components.session_example_gen.session_settings import SessionSettings

# Beam Metrics namespace of every counter below.
METRICS_NAMESPACE = "session_example_gen"


# Counters reported on the Examples artifact and in the summary line, in this order.
REPORTED_COUNTERS = (
    "rows_read",
    "events_read",
    "bad_rows",
    *(f"bad_row_{reason}" for reason in BAD_ROW_REASONS),
    DROPPED_NONPOSITIVE_WEIGHT,
    DROPPED_OTHER_ACTION,
    "dropped_rare_item_events",
    "dropped_repeated_events",
    "dropped_short_sessions",
    "sessions",
    "pairs_train",
    "pairs_eval",
    "pairs_test",
    "pairs_rerank",
)


def summary(counts: Mapping[str, int]) -> str:
    """One line with every counter, zeros left out."""
    return ", ".join(f"{name}={counts[name]}" for name in REPORTED_COUNTERS if counts.get(name))


def too_many_bad_rows(counts: Mapping[str, int], max_bad_share: float) -> bool:
    """More malformed rows than `max_bad_share` of the rows read: the failure that names the quarantine."""
    rows, bad = counts.get("rows_read", 0), counts.get("bad_rows", 0)
    return rows > 0 and bad / rows > max_bad_share


def check_counts(
    input_path: str, counts: Mapping[str, int], settings: SessionSettings, quarantine: str
) -> None:
    """Fails a run that read nothing, read too many malformed rows, or produced no training pair."""
    rows, bad = counts.get("rows_read", 0), counts.get("bad_rows", 0)
    if rows == 0:
        raise ValueError(f"no rows read from {input_path!r}")
    if too_many_bad_rows(counts, settings.max_bad_share):
        by_reason = {r: counts.get(f"bad_row_{r}", 0) for r in BAD_ROW_REASONS}
        reasons = ", ".join(f"{r}={n}" for r, n in by_reason.items() if n)
        raise ValueError(
            f"{bad} of {rows} rows ({bad / rows:.2%}) of {input_path!r} are malformed ({reasons}), more than "
            f"max_bad_share={settings.max_bad_share:.2%}; the bad rows are listed in {quarantine}"
        )
    if counts.get("pairs_train", 0) == 0:
        raise ValueError(
            f"no training pairs from {input_path!r} ({summary(counts)}): every pair was filtered out; "
            f"check min_count={settings.min_count}, session_gap_seconds={settings.session_gap_seconds} and "
            f"window={settings.window}"
        )
