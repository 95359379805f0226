"""Public-domain text -> a pre-sessionized log: words are items, one verse or sentence is one session.

Why: in text the next item complements the last one ("the" -> "earth") instead of substituting for it, the
opposite of most engagement logs; it checks Pin2Vec against co-occurrence on real, freely shareable data.
The output is what ``pin2vec run --sessions`` reads: ``sessions.txt``, one session per line, words
separated by single spaces, plus ``text_sessions.json`` (source and counts).

Input formats:
- ``plain``: any UTF-8 text. Blank lines end paragraphs; lines inside a paragraph are joined; a sentence
  ends at ``.``, ``!`` or ``?`` (closing quotes/brackets included) followed by white space. Abbreviations
  ("Mr.") end a sentence too: cheap, and harmless for co-occurrence statistics.
- ``kjv``: Debian's King James Version (package ``bible-kjv-text``). Its ``/usr/lib/bible.data`` is the
  Bible Retrieval System's own compressed format (magic ``EC02``); its reader ``bible`` (package
  ``bible-kjv``, installed with it) decodes it, and ``bible -f Gen1:1-Rev22:21`` prints one verse per line
  as ``<ref> <text>`` (``Ge1:1 In the beginning ...``). A ``kjv`` source is either the data file itself
  (decoded with ``bible``) or such a dump; each verse is one session.

Splitting, normalising and formatting are pure functions over strings; only :func:`read_source`,
:func:`dump_kjv` and :func:`write_text_sessions` touch files or processes. Output is byte-for-byte
deterministic (no clocks, no randomness).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engagement_data.atomic_file import write_atomic

FORMATS = ("plain", "kjv")
SESSIONS_FILE = "sessions.txt"
MANIFEST_FILE = "text_sessions.json"

KJV_DATA_FILE = "/usr/lib/bible.data"  # `dpkg -L bible-kjv-text`
KJV_READER = "bible"  # `dpkg -L bible-kjv`
KJV_RANGE = "Gen1:1-Rev22:21"  # the whole text, per `man bible`
KJV_INSTALL = "sudo apt-get install bible-kjv-text"  # pulls in the reader, bible-kjv (recommended)
BRS_MAGIC = b"EC02"  # first bytes of a Bible Retrieval System compressed data file
READER_TIMEOUT_S = 120.0

# A word: letters/digits, with apostrophes only between them ("lord's", "don't"); everything else separates.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# A verse line of `bible -f`: "Ge1:1 text", "1Cor13:4 text"; also "Genesis 1:1 text", "1 John 4:8 text".
_KJV_LINE = re.compile(r"^\s*(?P<ref>(?:[1-3] ?)?[A-Za-z]+\.? ?\d+:\d+)\s+(?P<text>\S.*?)\s*$")
# The end of a sentence: terminal punctuation, any closing quotes/brackets, then white space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u2019\u201d)\]]*\s+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


class TextSourceError(ValueError):
    """The text source is missing, empty, unreadable or not in its format; the message names the file."""


@dataclass(frozen=True)
class TextSettings:
    """How text becomes sessions."""

    format: str = "plain"  # plain|kjv (see the module docstring)
    min_words: int = 2  # shorter sessions teach no pair: pairs need a context word

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format={self.format!r} is invalid: expected one of {FORMATS}")
        if self.min_words < 2:
            raise ValueError(f"min_words={self.min_words!r} is invalid: expected >= 2 (a pair needs two)")


@dataclass(frozen=True)
class TextSessions:
    """What :func:`write_text_sessions` wrote, with its counts."""

    sessions_path: Path
    manifest_path: Path
    units: int  # verses or sentences read
    sessions: int  # sessions written
    dropped_short: int  # units with fewer than min_words words
    words: int  # words written (events)
    vocabulary: int  # distinct words (items)


# ------------------------------------------------------------------------------------------ pure functions


def normalize_words(text: str) -> list[str]:
    """Lowercased words without punctuation; apostrophes inside words are kept ("LORD's" -> "lord's").

    Why: one spelling per word, so "Earth," and "earth" are one item; other punctuation inside a word
    separates ("Beer-sheba" -> "beer", "sheba"), as dashes in plain text ("word--word") must.
    """
    return _WORD.findall(text.translate(_APOSTROPHES).lower())


def split_plain(text: str) -> list[str]:
    """Plain text -> its sentences (stripped, inner line breaks as spaces), in order.

    Why: a sentence is the natural session of prose; a paragraph break ends one even without a full stop
    (titles, headings, verse lines of poems).
    """
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n")):
        joined = " ".join(paragraph.split())
        sentences.extend(s.strip() for s in _SENTENCE_END.split(joined) if s.strip())
    return sentences


def split_kjv(text: str, *, source: str = "<text>") -> list[str]:
    """A verse-per-line KJV dump (``bible -f``: ``<ref> <text>``) -> the verse texts, in order.

    Blank lines are skipped; any other line without a reference raises :class:`TextSourceError` naming
    ``source`` and the line, since a wrong format silently read as verses would mislead every metric.
    """
    verses: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _KJV_LINE.match(line)
        if match is None:
            raise TextSourceError(
                f"{source} line {lineno}: not a KJV verse line '<ref> <text>' (like 'Ge1:1 In the'): "
                f"{line[:80]!r}; for other text use --format plain"
            )
        verses.append(match["text"])
    return verses


def split_units(text: str, fmt: str, *, source: str = "<text>") -> list[str]:
    """The text's sessions before normalising: verses (kjv) or sentences (plain)."""
    if fmt == "kjv":
        return split_kjv(text, source=source)
    if fmt == "plain":
        return split_plain(text)
    raise ValueError(f"format={fmt!r} is invalid: expected one of {FORMATS}")


def text_to_sessions(
    text: str, settings: TextSettings = TextSettings(), *, source: str = "<text>"
) -> tuple[list[list[str]], int]:
    """Text -> (sessions of normalised words, units dropped for having fewer than ``min_words`` words)."""
    sessions: list[list[str]] = []
    dropped = 0
    for unit in split_units(text, settings.format, source=source):
        words = normalize_words(unit)
        if len(words) < settings.min_words:
            dropped += 1
        else:
            sessions.append(words)
    return sessions, dropped


def format_sessions(sessions: Iterable[Sequence[str]]) -> str:
    """``sessions.txt`` content: one session per line, words separated by one space, a final newline."""
    return "".join(" ".join(words) + "\n" for words in sessions)


# --------------------------------------------------------------------------------------------- reading


def read_source(path: str | os.PathLike[str], fmt: str) -> tuple[str, str]:
    """(the text of ``path``, how it was read); the Debian KJV data file is decoded with its reader.

    Raises FileNotFoundError for a missing file and :class:`TextSourceError` for an empty, unreadable or
    non-UTF-8 one, each naming the file.
    """
    file = Path(path)
    if not file.exists():
        hint = f" (the Debian King James Version: {KJV_INSTALL})" if fmt == "kjv" else ""
        raise FileNotFoundError(f"text source not found: {file}{hint}")
    try:
        data = file.read_bytes()
    except OSError as err:  # a directory, no permission, an I/O error
        raise TextSourceError(f"{file}: unreadable text source: {err.strerror or err}") from err
    if data.startswith(BRS_MAGIC):
        if fmt != "kjv":
            raise TextSourceError(f"{file}: a compressed Bible Retrieval System data file; use --format kjv")
        return dump_kjv(file), f"{KJV_READER} -f {KJV_RANGE}"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TextSourceError(
            f"{file}: not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r})"
        ) from err
    if not text.strip():
        raise TextSourceError(f"{file}: empty text source (no words)")
    return text, "utf-8"


def find_kjv(data_file: str | os.PathLike[str] = KJV_DATA_FILE) -> Path:
    """The Debian KJV data file and a reader for it, or FileNotFoundError saying how to install them."""
    path = Path(data_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"King James Version data file not found: {path} (Debian package bible-kjv-text); "
            f"install it with: {KJV_INSTALL}"
        )
    if shutil.which(KJV_READER) is None:
        raise FileNotFoundError(
            f"{path} needs its reader, the `{KJV_READER}` program (Debian package bible-kjv), to decode it; "
            f"install it with: sudo apt-get install bible-kjv"
        )
    return path


def dump_kjv(
    data_file: str | os.PathLike[str] = KJV_DATA_FILE, *, timeout_s: float = READER_TIMEOUT_S
) -> str:
    """The whole KJV as ``bible -f`` prints it (one ``<ref> <text>`` verse per line), from ``data_file``."""
    path = find_kjv(data_file)
    command = [KJV_READER, "-f", "-p", str(path.parent), "-d", path.name, KJV_RANGE]
    try:
        result = subprocess.run(
            command, capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise TextSourceError(f"{path}: {' '.join(command)} failed: {err}") from err
    output = result.stdout.decode("utf-8", errors="replace")
    if result.returncode != 0 or not output.strip():
        said = (result.stderr or result.stdout).decode("utf-8", errors="replace").strip()
        raise TextSourceError(
            f"{path}: {' '.join(command)} exited {result.returncode}: {said or 'no output'}; "
            f"reinstall with: {KJV_INSTALL}"
        )
    return output


# --------------------------------------------------------------------------------------------- writing


def write_text_sessions(
    source: str | os.PathLike[str], out_dir: str | os.PathLike[str], settings: TextSettings = TextSettings()
) -> TextSessions:
    """Reads ``source``, writes ``out_dir/sessions.txt`` and ``text_sessions.json``; same input, same bytes.

    Raises :class:`TextSourceError` naming the file when it yields no session of ``min_words`` words.
    """
    text, read_as = read_source(source, settings.format)
    name = str(source)
    sessions, dropped = text_to_sessions(text, settings, source=name)
    if not sessions:
        raise TextSourceError(
            f"{name}: no session of at least {settings.min_words} words "
            f"({dropped} {'verse' if settings.format == 'kjv' else 'sentence'}(s) too short)"
        )
    content = format_sessions(sessions).encode("utf-8")
    words = sum(len(s) for s in sessions)
    vocabulary = len(set(itertools.chain.from_iterable(sessions)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sessions_path, manifest_path = out / SESSIONS_FILE, out / MANIFEST_FILE
    write_atomic(sessions_path, content)
    manifest = {
        "source": os.path.abspath(name),
        "format": settings.format,
        "read_as": read_as,
        "source_text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "min_words": settings.min_words,
        "counts": {
            "units": len(sessions) + dropped,
            "sessions": len(sessions),
            "dropped_short": dropped,
            "words": words,
            "vocabulary": vocabulary,
        },
        "sessions_file": SESSIONS_FILE,
        "sessions_sha256": hashlib.sha256(content).hexdigest(),
    }
    write_atomic(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return TextSessions(
        sessions_path=sessions_path,
        manifest_path=manifest_path,
        units=len(sessions) + dropped,
        sessions=len(sessions),
        dropped_short=dropped,
        words=words,
        vocabulary=vocabulary,
    )
