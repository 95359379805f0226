"""Spans, as TFX's ExampleGen reads them: an input pattern with `{SPAN}` or `{YYYY}`/`{MM}`/`{DD}` (and
optionally `{VERSION}`) placeholders, and a `RangeConfig.rolling_range` of the latest N spans.

TFX's FileBasedExampleGen resolves one span (the latest, or a static range); a daily retrain reads a window
of them. `resolve_spans` is that resolution as a pure function of the pattern and the paths that exist, built
on TFX's own pattern machinery (`tfx.components.example_gen.utils`: the same placeholder checks, glob and
regex, date <-> span numbers), so a pattern means here what it means to any TFX ExampleGen.

The window is calendar-like: the latest span found and the N - 1 span numbers before it (days, for a date
pattern). A span missing inside the window is read as absent and reported (`SpanSelection.missing`), not
replaced by an older one, so `--days 7` never trains on data older than a week.

TFX's utils module imports TensorFlow (tens of seconds); it is imported where used, so that `has_span_spec`
and `pattern_glob` answer the command line's quick input checks without it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tfx.proto import range_config_pb2  # a plain protobuf module: no TensorFlow

# TFX's placeholder spellings (tfx.components.example_gen.utils), as regexes for the TensorFlow-free checks.
_SPEC_REGEX = re.compile(r"\{(SPAN|VERSION)(:[^}]*)?\}|\{YYYY\}|\{MM\}|\{DD\}")
_SPAN_OR_DATE_REGEX = re.compile(r"\{SPAN(:[^}]*)?\}|\{YYYY\}|\{MM\}|\{DD\}")


@dataclass(frozen=True)
class SpanSelection:
    """What a pattern resolved to: the spans read (oldest first), their files, and what the window lacked."""

    pattern: str
    spans: tuple[int, ...]  # span numbers read, oldest first (days since 1970-01-01 for a date pattern)
    versions: tuple[int | None, ...]  # the version read of each span (its latest); None without {VERSION}
    files: tuple[str, ...]  # every file of those spans and versions, sorted
    missing: tuple[int, ...]  # span numbers inside the window with no file
    is_date: bool  # the spans are days ({YYYY}-{MM}-{DD})

    @property
    def span(self) -> int:
        """The newest span read: what TFX records as the Examples artifact's `span`."""
        return self.spans[-1]

    @property
    def version(self) -> int | None:
        """The version read of the newest span: TFX's `version` property."""
        return self.versions[-1]

    def label(self, span: int) -> str:
        """A span as a person reads it: its date (YYYY-MM-DD) for a date pattern, else its number."""
        if not self.is_date:
            return str(span)
        from tfx.components.example_gen import utils

        year, month, day = utils.span_number_to_date(span)
        return f"{year:04d}-{month:02d}-{day:02d}"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label(s) for s in self.spans)

    @property
    def missing_labels(self) -> tuple[str, ...]:
        return tuple(self.label(s) for s in self.missing)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SpanSelection:
        fields = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def has_span_spec(pattern: str) -> bool:
    """True when the path names spans ({SPAN}, {YYYY}-{MM}-{DD}), so it must be resolved, not globbed."""
    return bool(_SPAN_OR_DATE_REGEX.search(pattern))


def pattern_glob(pattern: str) -> str:
    """The glob every file of every span and version matches (each placeholder becomes `*`)."""
    return _SPEC_REGEX.sub("*", pattern)


def rolling_range(num_spans: int, start_span_number: int = 0) -> range_config_pb2.RangeConfig:
    """TFX's RangeConfig for the latest `num_spans` spans (none before `start_span_number`)."""
    if not isinstance(num_spans, int) or num_spans < 1:
        raise ValueError(f"the number of spans (--days) must be an integer >= 1, got {num_spans!r}")
    return range_config_pb2.RangeConfig(
        rolling_range=range_config_pb2.RollingRange(num_spans=num_spans, start_span_number=start_span_number)
    )


def range_config_to_json(config: range_config_pb2.RangeConfig | None) -> str:
    """The component's `range_config` exec property ('' for none: the latest span only, as in TFX)."""
    if config is None:
        return ""
    from google.protobuf import json_format

    return json_format.MessageToJson(config, sort_keys=True, indent=None)


def range_config_from_json(text: str) -> range_config_pb2.RangeConfig | None:
    if not text:
        return None
    from google.protobuf import json_format

    return json_format.Parse(text, range_config_pb2.RangeConfig())


def resolve_spans(
    pattern: str, paths: Iterable[str], range_config: range_config_pb2.RangeConfig | None = None
) -> SpanSelection:
    """The spans of `pattern` to read among `paths` (files that exist, e.g. `glob(pattern_glob(pattern))`).

    Without a range, the latest span (TFX's default); with `rolling_range(num_spans=N, start_span_number=S)`
    the latest span found and the N - 1 span numbers before it, none below S; a static range reads exactly
    its spans. Within each span the latest `{VERSION}` is read. Paths the pattern does not match are ignored.
    Raises ValueError naming the pattern when nothing matches, or when the pattern's placeholders are wrong
    (both {SPAN} and a date, a date spec missing, {VERSION} alone: TFX's own checks).
    """
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2

    split = example_gen_pb2.Input.Split(name="events", pattern=pattern)
    is_span, is_date, is_version = utils.verify_split_pattern_specs(split)
    if not (is_span or is_date):
        raise ValueError(f"{pattern!r} has no {{SPAN}} or {{YYYY}}-{{MM}}-{{DD}} placeholder to resolve")
    # TFX joins a base uri and the pattern; the pattern here is the whole path. The two private helpers are
    # TFX's own matching rules (FileBasedExampleGen's), used as they are rather than rewritten.
    _, regex = utils._create_matching_glob_and_regex(
        uri="",
        split=split,
        is_match_span=is_span,
        is_match_date=is_date,
        is_match_version=is_version,
        range_config=None,
    )
    matcher = re.compile(f"^{regex}$")
    found: dict[int, dict[int | None, list[str]]] = {}  # span -> version -> files
    for path in paths:
        if not matcher.match(path):
            continue
        _, span, _, version = utils._find_matched_span_version_from_path(
            path, regex, is_span, is_date, is_version
        )
        found.setdefault(span, {}).setdefault(version, []).append(path)
    if not found:
        raise ValueError(f"no file matches the pattern {pattern!r}")

    window = _window(sorted(found), range_config, pattern)
    spans = tuple(s for s in window if s in found)
    if not spans:
        raise ValueError(
            f"no file of the pattern {pattern!r} is in the span range {_describe(range_config)}; "
            f"spans found: {sorted(found)}"
        )
    versions = tuple(_latest_version(found[s]) for s in spans)
    files = tuple(sorted(f for s, v in zip(spans, versions, strict=True) for f in found[s][v]))
    missing = tuple(s for s in window if s not in found)
    return SpanSelection(pattern, spans, versions, files, missing, is_date)


def _window(spans: list[int], config: range_config_pb2.RangeConfig | None, pattern: str) -> list[int]:
    """The span numbers the range asks for, given the spans found (sorted)."""
    if config is None:
        return [spans[-1]]
    if config.HasField("static_range"):
        static = config.static_range
        if static.end_span_number < static.start_span_number:
            raise ValueError(f"static range {static.start_span_number}..{static.end_span_number} is empty")
        return list(range(static.start_span_number, static.end_span_number + 1))
    if config.HasField("rolling_range"):
        rolling = config.rolling_range
        num = rolling.num_spans or 1
        eligible = [s for s in spans if s >= rolling.start_span_number]
        if not eligible:
            raise ValueError(
                f"no span of the pattern {pattern!r} is at or after start_span_number "
                f"{rolling.start_span_number}; spans found: {spans}"
            )
        latest = eligible[-1]
        return list(range(max(latest - num + 1, rolling.start_span_number), latest + 1))
    return [spans[-1]]


def _latest_version(by_version: dict[int | None, list[str]]) -> int | None:
    versions = [v for v in by_version if v is not None]
    return max(versions) if versions else None


def _describe(config: range_config_pb2.RangeConfig | None) -> str:
    return "(latest span)" if config is None else str(config).replace("\n", " ").strip()


def list_pattern_paths(pattern: str) -> list[str]:
    """Every file the pattern could mean, any span or version: local paths through the standard library,
    remote ones (gs://...) through TFX's fileio."""
    glob_pattern = pattern_glob(pattern)
    if "://" in pattern:
        from tfx.dsl.io import fileio

        return sorted(str(p) for p in fileio.glob(glob_pattern))
    import glob

    # Hidden and marker files (.crc, _SUCCESS) are not data, as in `input_files.list_input_files`.
    paths = [p for p in glob.glob(glob_pattern) if not os.path.basename(p).startswith((".", "_"))]
    files = sorted(p for p in paths if os.path.isfile(p))
    if not files and any(os.path.isdir(p) for p in paths):
        raise ValueError(
            f"the pattern {pattern!r} matches directories, not files: end it with /* (or /*.parquet) "
            "to read the files in them"
        )
    return files


def resolve_pattern(pattern: str, range_config: range_config_pb2.RangeConfig | None = None) -> SpanSelection:
    """`resolve_spans` over the files that exist now."""
    return resolve_spans(pattern, list_pattern_paths(pattern), range_config)
