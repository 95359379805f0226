"""The pipeline's reading and per-user hold-out, for the benches: one place that strings sessions_lib's pure
functions together the way SessionExampleGen does (parse rows -> filter_rare_items -> hold_out_last per
user), so every bench reads and splits a log exactly as the pipeline does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from components.session_example_gen import sessions_lib
from components.session_example_gen.sessions_lib import Event, EventSource, SessionSettings, UserHistory


def read_events(path: str, source: EventSource | None = None, *, skip_bad_rows: bool = False) -> list[Event]:
    """Every event of a log (file, directory or glob) through the pipeline's parser. A malformed row fails
    here, naming file, line and field, unless `skip_bad_rows` (the pipeline quarantines them) drops it."""
    source = source or EventSource(path=path)
    events = []
    for file in sessions_lib.list_input_files(path):
        for raw in sessions_lib.read_rows(file, source):
            parsed = sessions_lib.parse_row(raw.row, source)
            if isinstance(parsed, sessions_lib.BadRow):
                if skip_bad_rows:
                    continue
                raise ValueError(f"{raw.file} line {raw.line}: {parsed.reason}: {parsed.detail}")
            if isinstance(parsed, Event):
                events.append(parsed)
    return events


def events_by_user(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Each user's events in input order, users sorted by id (a reproducible order for the benches' lists)."""
    by_user: dict[str, list[Event]] = {}
    for event in events:
        by_user.setdefault(event.user, []).append(event)
    return {user: by_user[user] for user in sorted(by_user)}


def held_out_histories(
    events: Iterable[Event], settings: SessionSettings
) -> Iterator[tuple[str, UserHistory]]:
    """(user, UserHistory) per user, as SessionExampleGen splits them: rare items dropped first, then each
    user's last engagements held out (validation, test and, with rerank_transitions, the reranker's)."""
    kept, _ = sessions_lib.filter_rare_items(events, settings.min_count)
    for user, user_events in events_by_user(kept).items():
        yield (
            user,
            sessions_lib.hold_out_last(
                user_events,
                settings.eval_user_share,
                settings.rerank_transitions,
                settings.rerank_min_engagements,
            ),
        )
