"""Tests for engagement_data.movielens_parse and movielens_fetch.

Parsing, normalisation and verification run on tiny hand-made data. One session-scoped fixture fetches the
real data set through the wheel fallback (`pip download recbole==1.2.1`, a couple of seconds where PyPI is
reachable); the canonical, cache and corruption tests reuse its files, served from local zips through
`file://` URLs, so no test waits on the GroupLens host.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import zipfile
from pathlib import Path

import pytest

from engagement_data import movielens_fetch as fetch
from engagement_data import movielens_parse as parse
from formats import titles as titles_format

TINY_U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n\n"
TINY_U_ITEM = (
    "242|Kolya (1996)|24-Jan-1997||http://example|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "302|L.A. Confidential (1997)|01-Jan-1997||http://example|0|0|0|0|0|0|1|0|0|0|0|0|1|0|0|0|1|0|0\n"
    "543|Misérables, Les (1995)|01-Jan-1995||http://example|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0\n"
)
TINY_INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n186\t302\t3.0\t891717742\n196\t302\t5\t881250950\n"
)
TINY_ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "242\tKolya\t1996\tComedy\n"
    "267\tunkonwn\tunkonwn\tunknown\n"
    "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
    "543\tMisérables, Les\t1995\tDrama Musical\n"
)
TINY_RATINGS_TSV = (
    b"user_id\titem_id\trating\ttimestamp\n"
    b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n"
)
TINY_EXPECTED = parse.Expected(
    rows=3, users=2, items=2, ratings_sha256=hashlib.sha256(TINY_RATINGS_TSV).hexdigest()
)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _canonical_zip(path: Path, u_data: str, u_item: str) -> str:
    """A GroupLens-shaped ml-100k.zip, returned as a file:// URL."""
    _zip(path, {parse.U_DATA_MEMBER: u_data.encode("utf-8"), parse.U_ITEM_MEMBER: u_item.encode("latin-1")})
    return path.as_uri()


def _fake_wheel(directory: Path, inter: str, item: str) -> str:
    """A minimal valid wheel carrying recbole's two ml-100k files; pip 'downloads' it from a local path."""
    path = directory / "fakerecbole-1.0-py3-none-any.whl"
    _zip(
        path,
        {
            parse.RECBOLE_INTER_MEMBER: inter.encode("utf-8"),
            parse.RECBOLE_ITEM_MEMBER: item.encode("utf-8"),
            "fakerecbole-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: fakerecbole\nVersion: 1.0\n",
            "fakerecbole-1.0.dist-info/WHEEL": (
                b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            ),
            "fakerecbole-1.0.dist-info/RECORD": b"",
        },
    )
    return str(path)


def _unreachable(tmp_path: Path) -> dict[str, str]:
    """Sources that fail at once and locally: a missing file:// zip and a missing local wheel."""
    return {
        "canonical_url": (tmp_path / "no-such-ml-100k.zip").as_uri(),
        "wheel_spec": str(tmp_path / "no_such_wheel-0.0-py3-none-any.whl"),
    }


# ------------------------------------------------------------------------------------ parse and normalise


def test_parse_u_data_keeps_source_order_and_skips_blank_lines():
    assert parse.parse_u_data(TINY_U_DATA) == [
        (196, 242, 3, 881250949),
        (186, 302, 3, 891717742),
        (196, 302, 5, 881250950),
    ]


def test_parse_u_data_names_the_bad_line():
    with pytest.raises(ValueError, match=r"u\.data line 2: expected 4 tab-separated fields"):
        parse.parse_u_data("1\t2\t3\t4\n1\t2\t3\n")
    with pytest.raises(ValueError, match=r"line 1: column 'rating' must be an integer, got '4.5'"):
        parse.parse_u_data("1\t2\t4.5\t4\n")


def test_parse_u_item_takes_id_and_title():
    assert parse.parse_u_item(TINY_U_ITEM) == [
        (242, "Kolya (1996)"),
        (267, "unknown"),
        (302, "L.A. Confidential (1997)"),
        (543, "Misérables, Les (1995)"),
    ]


def test_parse_recbole_inter_checks_the_header_and_accepts_integral_floats():
    assert parse.parse_recbole_inter(TINY_INTER)[1] == (186, 302, 3, 891717742)
    with pytest.raises(ValueError, match="unexpected header"):
        parse.parse_recbole_inter("user_id\titem_id\trating\ttimestamp\n1\t2\t3\t4\n")


@pytest.mark.parametrize(
    ("title", "year", "want"),
    [
        ("Toy Story", "1995", "Toy Story (1995)"),
        ("Usual Suspects, The", "1995", "Usual Suspects, The (1995)"),
        # recbole split on the last parenthesis of u.item's "... Giving (1995) (V)"
        (
            "Land Before Time III: The Time of the Great Giving (1995)",
            "V",
            "Land Before Time III: The Time of the Great Giving (1995) (V)",
        ),
        ("unkonwn", "unkonwn", "unknown"),  # u.item 267 is "unknown" with no date
    ],
)
def test_recbole_title_rebuilds_the_u_item_title(title, year, want):
    assert parse.recbole_title(title, year) == want


def test_both_sources_normalise_to_the_same_bytes():
    canonical = (
        parse.format_ratings(parse.parse_u_data(TINY_U_DATA)),
        titles_format.format_titles(parse.parse_u_item(TINY_U_ITEM)),
    )
    wheel = (
        parse.format_ratings(parse.parse_recbole_inter(TINY_INTER)),
        titles_format.format_titles(parse.parse_recbole_item(TINY_ITEM)),
    )
    assert canonical == wheel
    assert canonical[0] == TINY_RATINGS_TSV
    assert canonical[1].decode("utf-8").splitlines()[:2] == ["item_id\ttitle", "242\tKolya (1996)"]


def test_format_titles_rejects_tabs():
    with pytest.raises(ValueError, match="item 7 contains a tab"):
        titles_format.format_titles([(7, "a\tb")])


def test_load_titles_round_trip_and_errors(tmp_path):
    path = tmp_path / "titles.tsv"
    path.write_bytes(titles_format.format_titles(parse.parse_u_item(TINY_U_ITEM)))
    titles = titles_format.load_titles(path)
    assert titles == {
        "242": "Kolya (1996)",
        "267": "unknown",
        "302": "L.A. Confidential (1997)",
        "543": "Misérables, Les (1995)",
    }
    path.write_text("id\tname\n1\tx\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unexpected header"):
        titles_format.load_titles(path)
    path.write_text("item_id\ttitle\n1\tx\n1\ty\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: duplicate item_id '1'"):
        titles_format.load_titles(path)


# ------------------------------------------------------------------------------------------ verification


TINY_TITLES_TSV = b"item_id\ttitle\n242\tKolya (1996)\n302\tL.A. Confidential (1997)\n"


def _verify(ratings: bytes = TINY_RATINGS_TSV, titles: bytes = TINY_TITLES_TSV, **changes) -> None:
    expected = dataclasses.replace(TINY_EXPECTED, **changes)
    parse.verify_movielens(
        ratings, titles, expected, ratings_name="out/ratings.tsv", titles_name="out/titles.tsv"
    )


def test_verify_accepts_matching_data():
    _verify()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rows": 4}, "out/ratings.tsv: 3 rows, expected 4"),
        ({"users": 943}, "out/ratings.tsv: 2 users, expected 943"),
        ({"items": 1682}, "out/ratings.tsv: 2 items, expected 1,682"),
    ],
)
def test_verify_reports_count_mismatches(changes, message):
    with pytest.raises(parse.DataVerificationError, match=message):
        _verify(**changes)


def test_verify_reports_missing_titles():
    titles = b"item_id\ttitle\n242\tKolya (1996)\n999\tOther (1990)\n"
    with pytest.raises(
        parse.DataVerificationError, match=r"out/titles.tsv: no title for 1 rated item\(s\), e.g. \['302'\]"
    ):
        _verify(titles=titles)


def test_verify_checksum_mismatch_names_file_expected_and_actual():
    bad = TINY_RATINGS_TSV.replace(b"\t5\t", b"\t4\t")
    with pytest.raises(parse.ChecksumMismatchError) as info:
        _verify(ratings=bad)
    message = str(info.value)
    assert "out/ratings.tsv" in message
    assert TINY_EXPECTED.ratings_sha256 in message
    assert hashlib.sha256(bad).hexdigest() in message


# ----------------------------------------------------------------------------------- sources, tiny data


def test_read_canonical_from_a_file_url(tmp_path):
    url = _canonical_zip(tmp_path / "ml-100k.zip", TINY_U_DATA, TINY_U_ITEM)
    ratings, titles = fetch.read_canonical(url, timeout_s=5)
    assert parse.format_ratings(ratings) == TINY_RATINGS_TSV
    assert (543, "Misérables, Les (1995)") in titles  # decoded from latin-1


def test_read_canonical_reports_unavailable_sources(tmp_path):
    with pytest.raises(fetch.SourceUnavailableError, match=r"no-such-ml-100k\.zip: URLError"):
        fetch.read_canonical(_unreachable(tmp_path)["canonical_url"], timeout_s=5)
    url = (tmp_path / "partial.zip").as_uri()
    _zip(tmp_path / "partial.zip", {parse.U_DATA_MEMBER: TINY_U_DATA.encode()})
    with pytest.raises(fetch.SourceUnavailableError, match=r"KeyError.*u\.item"):
        fetch.read_canonical(url, timeout_s=5)


def test_fetch_rejects_a_bad_timeout(tmp_path):
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        fetch.fetch_movielens_100k(tmp_path, timeout_s=0)


def test_fetch_falls_back_from_an_unverified_canonical_and_fails_clearly(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pin2vec.data")
    url = _canonical_zip(tmp_path / "ml-100k.zip", TINY_U_DATA, TINY_U_ITEM)
    wheel_spec = _unreachable(tmp_path)["wheel_spec"]
    out = tmp_path / "out"
    with pytest.raises(fetch.SourceUnavailableError) as info:
        fetch.fetch_movielens_100k(out, canonical_url=url, wheel_spec=wheel_spec)
    assert "3 rows, expected 100,000" in str(info.value)  # why the canonical zip was not used
    assert "no_such_wheel" in str(info.value)  # and why the wheel was not either
    assert "canonical source not used" in caplog.text
    assert not out.exists()  # nothing written, so no half-made cache


def test_fetch_raises_when_the_wheel_does_not_verify(tmp_path):
    wheel = _fake_wheel(tmp_path, TINY_INTER, TINY_ITEM)
    out = tmp_path / "out"
    with pytest.raises(
        parse.DataVerificationError, match=r"ratings.tsv \(from wheel .*\): 3 rows, expected 100,000"
    ):
        fetch.fetch_movielens_100k(
            out, canonical_url=_unreachable(tmp_path)["canonical_url"], wheel_spec=wheel
        )
    assert not (out / fetch.SUMS_FILE).exists()


# -------------------------------------------------------------------------------------- the real data


@pytest.fixture(scope="session")
def real_dir(tmp_path_factory) -> Path:
    """MovieLens-100K fetched for real through the recbole==1.2.1 wheel (the canonical host is skipped)."""
    base = tmp_path_factory.mktemp("movielens")
    files = fetch.fetch_movielens_100k(base / "data", canonical_url=(base / "absent.zip").as_uri())
    assert files.source == "wheel:recbole==1.2.1"
    return base / "data"


@pytest.fixture(scope="session")
def real_canonical_url(real_dir, tmp_path_factory) -> str:
    """A full-size GroupLens-shaped zip rebuilt from the real files, as a file:// URL."""
    rows = (real_dir / fetch.RATINGS_FILE).read_text(encoding="utf-8").splitlines()[1:]
    titles = titles_format.load_titles(real_dir / fetch.TITLES_FILE)
    u_item = "".join(f"{item}|{title}|01-Jan-1995||http://example|0|0|0\n" for item, title in titles.items())
    return _canonical_zip(
        tmp_path_factory.mktemp("canonical") / "ml-100k.zip", "\n".join(rows) + "\n", u_item
    )


def _copy_cache(real_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "cache"
    shutil.copytree(real_dir, out)
    return out


def test_real_fallback_downloads_and_verifies_movielens_100k(real_dir):
    ratings = (real_dir / fetch.RATINGS_FILE).read_bytes()
    lines = ratings.decode("utf-8").splitlines()
    assert lines[0] == "user_id\titem_id\trating\ttimestamp"
    assert lines[1] == "196\t242\t3\t881250949"  # the source's order
    body = [line.split("\t") for line in lines[1:]]
    assert len(body) == 100_000
    assert len({row[0] for row in body}) == 943
    assert len({row[1] for row in body}) == 1_682
    assert hashlib.sha256(ratings).hexdigest() == parse.EXPECTED_RATINGS_SHA256
    titles = titles_format.load_titles(real_dir / fetch.TITLES_FILE)
    assert len(titles) == 1_682
    assert titles["1"] == "Toy Story (1995)"
    assert titles["267"] == "unknown"
    sums = fetch.parse_sha256sums((real_dir / fetch.SUMS_FILE).read_text(encoding="utf-8"))
    assert sums == {
        fetch.RATINGS_FILE: parse.EXPECTED_RATINGS_SHA256,
        fetch.TITLES_FILE: hashlib.sha256((real_dir / fetch.TITLES_FILE).read_bytes()).hexdigest(),
    }
    assert sorted(p.name for p in real_dir.iterdir()) == [
        fetch.SUMS_FILE,
        fetch.RATINGS_FILE,
        fetch.TITLES_FILE,
    ]


def test_canonical_source_normalises_to_the_same_files(real_dir, real_canonical_url, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pin2vec.data")
    files = fetch.fetch_movielens_100k(
        tmp_path / "out", canonical_url=real_canonical_url, wheel_spec=_unreachable(tmp_path)["wheel_spec"]
    )
    assert files.source == f"canonical:{real_canonical_url}"
    assert files.ratings.read_bytes() == (real_dir / fetch.RATINGS_FILE).read_bytes()
    assert files.titles.read_bytes() == (real_dir / fetch.TITLES_FILE).read_bytes()
    assert "falling back" not in caplog.text


def test_cache_hit_needs_no_source(real_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pin2vec.data")
    out = _copy_cache(real_dir, tmp_path)
    files = fetch.fetch_movielens_100k(out, **_unreachable(tmp_path))
    assert files == fetch.MovieLensFiles(out / fetch.RATINGS_FILE, out / fetch.TITLES_FILE, "cache")
    assert "using cached" in caplog.text


def test_corrupted_cache_is_refetched(real_dir, real_canonical_url, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pin2vec.data")
    out = _copy_cache(real_dir, tmp_path)
    ratings = out / fetch.RATINGS_FILE
    ratings.write_bytes(ratings.read_bytes().replace(b"196\t242\t3\t", b"196\t242\t4\t", 1))
    files = fetch.fetch_movielens_100k(
        out, canonical_url=real_canonical_url, wheel_spec=_unreachable(tmp_path)["wheel_spec"]
    )
    assert "does not match SHA256SUMS" in caplog.text
    assert files.source.startswith("canonical:")
    assert hashlib.sha256(ratings.read_bytes()).hexdigest() == parse.EXPECTED_RATINGS_SHA256
    assert not list(out.glob(".*.tmp"))


def test_corrupted_cache_without_sources_raises(real_dir, tmp_path):
    out = _copy_cache(real_dir, tmp_path)
    with (out / fetch.TITLES_FILE).open("a", encoding="utf-8") as handle:
        handle.write("9999\tExtra (2000)\n")
    with pytest.raises(fetch.SourceUnavailableError, match="MovieLens-100K is unavailable"):
        fetch.fetch_movielens_100k(out, **_unreachable(tmp_path))


def test_wheel_with_a_changed_rating_fails_the_checksum(real_dir, tmp_path):
    inter = (real_dir / fetch.RATINGS_FILE).read_text(encoding="utf-8").splitlines()
    inter[0] = "\t".join(parse.RECBOLE_INTER_COLUMNS)
    inter[1] = "196\t242\t4\t881250949"  # same counts, one rating changed
    item = ["\t".join((*parse.RECBOLE_ITEM_COLUMNS, "class:token_seq"))]
    item += [
        f"{i}\t{t}\tunknown\tDrama"
        for i, t in titles_format.load_titles(real_dir / fetch.TITLES_FILE).items()
    ]
    wheel = _fake_wheel(tmp_path, "\n".join(inter) + "\n", "\n".join(item) + "\n")
    out = tmp_path / "out"
    with pytest.raises(parse.ChecksumMismatchError) as info:
        fetch.fetch_movielens_100k(
            out, canonical_url=_unreachable(tmp_path)["canonical_url"], wheel_spec=wheel
        )
    message = str(info.value)
    assert str(out / fetch.RATINGS_FILE) in message
    assert f"expected sha256 {parse.EXPECTED_RATINGS_SHA256}" in message
    assert (
        hashlib.sha256(
            ("\n".join(["\t".join(parse.RATINGS_COLUMNS), *inter[1:]]) + "\n").encode()
        ).hexdigest()
        in message
    )
    assert not out.exists()
