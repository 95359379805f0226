"""Tests for engagement_data.text_sessions (text -> sessions.txt) and `pin2vec data text|kjv`.

All input is tiny and embedded: King James Version Genesis 1:1-5 (public domain, 1611) in the verse-per-line
layout `bible -f` prints, and plain sentences written for these tests. One test reads the Debian KJV data
file when it is installed (about 0.3 s) and is skipped otherwise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from components.session_example_gen.event_rows import parse_session_line
from components.session_example_gen.input_files import read_rows
from components.session_example_gen.session_settings import EventSource
from engagement_data import text_sessions as ts
from pipeline import cli

GENESIS_1_1_5 = """\
Ge1:1 In the beginning God created the heaven and the earth.
Ge1:2 And the earth was without form, and void; and darkness was upon the face of the deep. \
And the Spirit of God moved upon the face of the waters.
Ge1:3 And God said, Let there be light: and there was light.

Ge1:4 And God saw the light, that it was good: and God divided the light from the darkness.
Ge1:5 And God called the light Day, and the darkness he called Night. \
And the evening and the morning were the first day.
"""

PLAIN = """\
The Lighthouse

The keeper climbed the stairs at dusk. He lit the lamp, and the
light swept over the bay!  Did the ships see it? "They did," said his daughter.
Yes.

It was 3.5 miles to the harbour's mouth; the keeper's log said so.
"""


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------- normalising


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("In the beginning God created", ["in", "the", "beginning", "god", "created"]),
        ("the LORD's house, the kings' sons;", ["the", "lord's", "house", "the", "kings", "sons"]),
        ("don\u2019t \u2018quote\u2019 me", ["don't", "quote", "me"]),
        ("'Tis Beer-sheba--and _so_ on...", ["tis", "beer", "sheba", "and", "so", "on"]),
        ("Psalm 23, verse 4: (fear) no evil!", ["psalm", "23", "verse", "4", "fear", "no", "evil"]),
        ("\u00c9lan and caf\u00e9", ["\u00e9lan", "and", "caf\u00e9"]),
        (" ... -- ; ", []),
    ],
)
def test_normalize_words_lowercases_strips_punctuation_keeps_inner_apostrophes(text, words):
    assert ts.normalize_words(text) == words


# ------------------------------------------------------------------------------------------- splitting


def test_split_plain_sentences_join_lines_and_paragraphs_end_sentences():
    assert ts.split_plain(PLAIN) == [
        "The Lighthouse",
        "The keeper climbed the stairs at dusk.",
        "He lit the lamp, and the light swept over the bay!",
        "Did the ships see it?",
        '"They did," said his daughter.',
        "Yes.",
        "It was 3.5 miles to the harbour's mouth; the keeper's log said so.",
    ]


def test_split_plain_handles_crlf_and_text_without_final_stop():
    assert ts.split_plain("One two.\r\nThree four\r\n\r\nfive six") == ["One two.", "Three four", "five six"]


def test_split_kjv_one_verse_per_line_without_references():
    verses = ts.split_kjv(GENESIS_1_1_5)
    assert len(verses) == 5
    assert verses[0] == "In the beginning God created the heaven and the earth."
    assert verses[2] == "And God said, Let there be light: and there was light."


@pytest.mark.parametrize(
    ("line", "verse"),
    [
        ("1Cor13:4 Charity suffereth long", "Charity suffereth long"),
        ("1 John 4:8 He that loveth not", "He that loveth not"),
        ("Genesis 1:1 In the beginning", "In the beginning"),
        ("  Rev22:21   The grace  ", "The grace"),
    ],
)
def test_split_kjv_reads_other_reference_spellings(line, verse):
    assert ts.split_kjv(line) == [verse]


def test_split_kjv_rejects_a_line_without_reference_naming_source_and_line():
    with pytest.raises(ts.TextSourceError, match=r"gen\.txt line 3: not a KJV verse line.*--format plain"):
        ts.split_kjv("Ge1:1 In the beginning\n\nIn the beginning, no reference\n", source="gen.txt")


def test_one_session_per_verse_and_short_sessions_dropped():
    sessions, dropped = ts.text_to_sessions(GENESIS_1_1_5 + "Ge1:6 Amen.\n", ts.TextSettings(format="kjv"))
    assert dropped == 1  # "Amen." is one word
    assert len(sessions) == 5
    assert " ".join(sessions[0]) == "in the beginning god created the heaven and the earth"
    plain, dropped = ts.text_to_sessions(PLAIN, ts.TextSettings(min_words=3))
    assert dropped == 2  # "The Lighthouse", "Yes."
    assert [len(s) for s in plain] == [7, 11, 5, 5, 14]


def test_format_sessions_one_line_each():
    assert ts.format_sessions([["a", "b"], ["c", "d", "e"]]) == "a b\nc d e\n"


def test_settings_are_validated():
    with pytest.raises(ValueError, match="format='html'"):
        ts.TextSettings(format="html")
    with pytest.raises(ValueError, match="min_words=1"):
        ts.TextSettings(min_words=1)


# -------------------------------------------------------------------------------------------- writing


def test_write_text_sessions_files_manifest_and_pipeline_readable(tmp_path):
    source = _write(tmp_path, "genesis.txt", GENESIS_1_1_5)
    written = ts.write_text_sessions(source, tmp_path / "out", ts.TextSettings(format="kjv"))
    lines = written.sessions_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == written.sessions == 5
    assert lines[2] == "and god said let there be light and there was light"
    manifest = json.loads(written.manifest_path.read_text(encoding="utf-8"))
    assert manifest["source"] == str(source)
    assert manifest["format"] == "kjv"
    assert manifest["counts"] == {
        "units": 5,
        "sessions": 5,
        "dropped_short": 0,
        "words": written.words,
        "vocabulary": written.vocabulary,
    }
    assert written.words == sum(len(line.split()) for line in lines)
    assert written.vocabulary == len({w for line in lines for w in line.split()})
    # the pipeline's pre-sessionized reader sees one history per line, the words in order
    rows = list(
        read_rows(str(written.sessions_path), EventSource(path=str(written.sessions_path), sessions=True))
    )
    events = parse_session_line(rows[0].row["session"], "s", rows[0].line)
    assert [e.item for e in events] == lines[0].split()


def test_same_input_same_bytes(tmp_path):
    source = _write(tmp_path, "plain.txt", PLAIN)
    first = ts.write_text_sessions(source, tmp_path / "a")
    second = ts.write_text_sessions(source, tmp_path / "b")
    for name in (ts.SESSIONS_FILE, ts.MANIFEST_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first.sessions == second.sessions == 6


# --------------------------------------------------------------------------------------------- errors


def test_missing_source_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"text source not found: .*nothing\.txt$"):
        ts.write_text_sessions(tmp_path / "nothing.txt", tmp_path / "out")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty text source"),
        ("  \n\n\t\n", "empty text source"),
        (b"caf\xe9 au lait", "not UTF-8 text"),
        ("Yes. No. Amen.", "no session of at least 2 words"),
        (ts.BRS_MAGIC + b"Compressed Data File\0\0", "compressed Bible Retrieval System data file"),
    ],
)
def test_unusable_source_names_the_file(tmp_path, content, message):
    source = _write(tmp_path, "bad.txt", content)
    with pytest.raises(ts.TextSourceError, match=message) as raised:
        ts.write_text_sessions(source, tmp_path / "out")
    assert str(source) in str(raised.value)
    assert not (tmp_path / "out" / ts.SESSIONS_FILE).exists()


def test_unreadable_source_names_the_file(tmp_path):
    with pytest.raises(ts.TextSourceError, match=f"{tmp_path}: unreadable text source"):
        ts.write_text_sessions(tmp_path, tmp_path / "out")  # a directory


def test_plain_text_read_as_kjv_fails_on_its_first_line(tmp_path):
    source = _write(tmp_path, "plain.txt", PLAIN)
    with pytest.raises(ts.TextSourceError, match=f"{source} line 1: not a KJV verse line"):
        ts.write_text_sessions(source, tmp_path / "out", ts.TextSettings(format="kjv"))


def test_missing_kjv_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install bible-kjv-text"):
        ts.find_kjv(tmp_path / "bible.data")


@pytest.mark.skipif(
    not Path(ts.KJV_DATA_FILE).is_file() or shutil.which(ts.KJV_READER) is None,
    reason="Debian bible-kjv-text (and its reader bible-kjv) not installed",
)
def test_debian_kjv_data_file_decodes_to_verses():
    verses = ts.split_kjv(ts.dump_kjv())
    assert len(verses) == 31_102
    assert verses[0] == "In the beginning God created the heaven and the earth."
    assert verses[-1] == "The grace of our Lord Jesus Christ be with you all. Amen."


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_data_text_writes_sessions(tmp_path, capsys):
    source = _write(tmp_path, "genesis.txt", GENESIS_1_1_5)
    out = tmp_path / "out"
    argv = ["data", "text", "--source", str(source), "--format", "kjv", "--out", str(out)]
    assert cli.main(argv) == 0
    assert "5 sessions of" in capsys.readouterr().out
    assert len((out / ts.SESSIONS_FILE).read_text(encoding="utf-8").splitlines()) == 5
    assert cli.main(["data", "text", "--source", str(source), "--out", str(tmp_path / "plain")]) == 0
    manifest = json.loads((tmp_path / "plain" / ts.MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["format"] == "plain"  # the default; "Ge1:1" is a word there


def test_cli_data_text_errors(tmp_path, capsys):
    assert cli.main(["data", "text", "--out", str(tmp_path)]) == 2
    assert "--source FILE is required" in capsys.readouterr().err
    assert cli.main(["data", "text", "--source", str(tmp_path / "none.txt"), "--out", str(tmp_path)]) == 1
    assert "none.txt" in capsys.readouterr().err
    assert cli.main(["data", "kjv", "--source", str(tmp_path / "bible.data"), "--out", str(tmp_path)]) == 1
    assert "apt-get install bible-kjv-text" in capsys.readouterr().err


def test_cli_data_synthetic_boards_still_parses():
    args = cli.build_parser().parse_args(["data", "synthetic", "--boards", "--fine-per-coarse", "4"])
    assert (args.dataset, args.boards, args.fine_per_coarse, args.source, args.format) == (
        "synthetic",
        True,
        4,
        None,
        None,
    )
