"""engagement_data.synthetic_boards(_measure): the planted sessions + boards world and its measurements."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from components.session_example_gen.event_rows import parse_row
from components.session_example_gen.input_files import list_input_files, read_rows
from components.session_example_gen.session_settings import EventSource
from engagement_data import synthetic as syn
from engagement_data import synthetic_boards as sb
from engagement_data import synthetic_boards_measure as sbm

TINY = dict(items=400, events=8_000, users=20, shards=2)  # ~1,900 saves, 1 for 4 events
# 800 boards that each hold one fine topic, in time order, without noise: the knobs' effects are exact.
PURE = dict(users=100, coarse_board_share=0.0, board_drift_share=0.0, save_noise=0.0)


def _world(tmp_path: Path, **settings) -> str:
    out = tmp_path / hashlib.sha1(repr(sorted(settings.items())).encode()).hexdigest()[:12]
    sb.generate(sb.BoardsSettings(**(TINY | settings)), str(out))
    return str(out)


def _digest(root: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def default_world(tmp_path_factory) -> str:
    return _world(tmp_path_factory.mktemp("boards"))


@pytest.fixture(scope="module")
def default_props(default_world) -> sbm.BoardsProperties:
    return sbm.measure(default_world)


def test_writes_every_file_and_the_manifest_counts_them(default_world):
    manifest = json.loads((Path(default_world) / sb.MANIFEST_FILE).read_text())
    events = sbm.read_shards(f"{default_world}/events")
    saves = sbm.read_shards(f"{default_world}/collections")
    assert manifest["events"] == len(events["item_id"]) == 8_000
    assert manifest["saves"] == len(saves["item_id"])
    assert manifest["boards"] == len(np.unique(saves["board_id"])) == 20 * 8
    assert manifest["settings"]["segmentation"] == 2 and manifest["fine_topics"] == 40
    assert sorted(manifest["collection_shards"]) == sorted(
        p.name for p in Path(default_world, "collections").iterdir()
    )
    # Boards are named <user>-b<k>, every user's in one shard; their mean size is saves_per_board.
    assert set(np.char.partition(saves["board_id"].astype(str), "-b")[:, 2]) == {str(k) for k in range(8)}
    assert abs(len(saves["item_id"]) / 160 - 12) < 1.0


def test_events_are_readable_by_session_example_gen(default_world):
    events_dir = f"{default_world}/events"
    source = EventSource(path=events_dir)
    rows = [parse_row(raw.row, source) for f in list_input_files(events_dir) for raw in read_rows(f, source)]
    assert len(rows) == 8_000 and {r.item for r in rows} <= {str(i) for i in range(400)}


def test_same_seed_same_bytes_other_seed_other_bytes(default_world, tmp_path):
    assert _digest(_world(tmp_path)) == _digest(default_world)
    assert _digest(_world(tmp_path, chunk_events=1_500)) != _digest(default_world)  # chunks draw differently
    assert _digest(_world(tmp_path, seed=1)) != _digest(default_world)


def test_parquet_shards_read_the_same_way(tmp_path):
    world = _world(tmp_path, file_format="parquet", events=2_000, users=10)
    assert all(p.suffix == ".parquet" for p in Path(world, "collections").iterdir())
    assert len(sbm.read_shards(f"{world}/events")["item_id"]) == 2_000
    assert sbm.read_shards(f"{world}/collections")["board_id"][0].startswith("0-b")


def test_refuses_to_mix_with_existing_shards(default_world):
    with pytest.raises(FileExistsError, match="already holds"):
        sb.generate(sb.BoardsSettings(**TINY), default_world)


def test_ground_truth_is_the_fine_topic_and_coarse_topics_group_fine_ones(default_world):
    truth = syn.read_ground_truth(f"{default_world}/{syn.GROUND_TRUTH_FILE}")
    fine, coarse = sbm.read_items(f"{default_world}/{sb.ITEMS_FILE}")
    assert len(truth) == 400
    for item, related in truth.items():
        assert sorted(map(int, related)) == [
            i for i in np.flatnonzero(fine == fine[int(item)]) if i != int(item)
        ]
    assert np.array_equal(coarse, np.minimum(fine // 8, 4))  # 40 fine topics, 8 to a coarse topic
    assert np.bincount(fine).tolist() == [10] * 40


def test_bridges_are_neighbours_inside_the_coarse_topic():
    two = sb.bridge_topics(num_fine=19, fine_per_coarse=8, bridges=2)  # coarse topics of 8 and 11
    assert two[0].tolist() == [7, 1] and two[8].tolist() == [18, 9] and two[18].tolist() == [17, 8]
    assert all(t in two[b] for t in range(19) for b in two[t])  # symmetric
    coarse = np.minimum(np.arange(19) // 8, 1)
    assert (coarse[two] == coarse[:, None]).all()
    one = sb.bridge_topics(num_fine=19, fine_per_coarse=8, bridges=1)[:, 0]
    assert one[:8].tolist() == [1, 0, 3, 2, 5, 4, 7, 6]
    assert one[16:].tolist() == [17, 16, 17]  # the odd one out of 11 pairs with the one before it


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(items=0), "items must be an integer"),
        (dict(users=0), "users must be None"),
        (dict(fine_topic_size=1), "fine_topic_size >= 2"),
        (dict(items=70), "items >= fine_topic_size"),
        (dict(bridges=3), "bridges must be 1 or 2"),
        (dict(bridge_prob=1.0), "bridge_prob"),
        (dict(saves_per_board=1), "saves_per_board must be >= 2"),
        (dict(segmentation=9), r"segmentation \(9\) must be <= boards_per_user"),
        (dict(coarse_board_share=1.5), "coarse_board_share"),
        (dict(board_drift_share=-0.1), "board_drift_share"),
        (dict(save_zipf_exponent=-1.0), "save_zipf_exponent"),
        (dict(mean_session_length=1.0), "mean_session_length"),
        (dict(file_format="json"), "file_format"),
    ],
)
def test_settings_reject_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        sb.BoardsSettings(**(dict(items=400, events=1_000) | bad))


def test_board_sizes_and_default_owners():
    settings = sb.BoardsSettings(items=400, events=30_000, saves_per_board=12)
    assert settings.board_sizes == (6, 18) and settings.owners == 30_000 // sb.EVENTS_PER_OWNER
    assert sb.BoardsSettings(items=400, events=10, saves_per_board=3).board_sizes == (2, 4)
    assert sb.BoardsSettings(items=400, events=10).owners == 1


# ------------------------------------------------------------------------------ the knobs move the measures


def test_segmentation_knob(tmp_path):
    off = sbm.measure(_world(tmp_path, segmentation=1, **PURE))
    on = sbm.measure(_world(tmp_path, segmentation=3, boards_per_user=6, **PURE))
    assert off.segmentation < 1.05  # a rare second board of one topic: interests are redrawn distinct
    assert on.segmentation > 2.8  # 3 boards per interest
    assert off.granularity == on.granularity == 1.0


def test_granularity_knob(tmp_path):
    fine = sbm.measure(_world(tmp_path, **PURE))
    coarse = sbm.measure(_world(tmp_path, **(PURE | dict(coarse_board_share=1.0))))
    assert fine.granularity == 1.0
    assert coarse.granularity > 3.0  # ~12 saves over the 8 fine topics of a coarse topic


def test_drift_knob(tmp_path):
    assert sbm.measure(_world(tmp_path, **PURE)).drift == 0.0
    measured = sbm.measure(_world(tmp_path, **(PURE | dict(board_drift_share=0.5)))).drift
    assert abs(measured - 0.5) < 0.06  # 800 boards: the binomial's sd is 0.018


def test_tail_items_are_saved_much_more_often_than_engaged(default_props, tmp_path):
    tail = default_props.tail
    assert tail.items == 133 and tail.saved_share > 0.8 and tail.engaged_share < 0.2
    steep = sbm.measure(_world(tmp_path, save_zipf_exponent=1.2)).tail  # saves as skewed as engagement
    assert steep.saved_share < tail.saved_share - 0.3


def test_sessions_stay_in_their_fine_topic_and_its_bridges_except_for_drift_and_noise(
    default_props, tmp_path
):
    # Defaults: drift 0.05 and noise 0.02 per event take ~8% of consecutive pairs outside topic and bridges.
    assert 0.85 < default_props.session_bridged < 0.97
    assert 0.6 < default_props.session_same_topic < default_props.session_bridged
    clean = sbm.measure(_world(tmp_path, drift=0.0, noise=0.0, users=1))
    assert clean.session_bridged == 1.0 and clean.session_same_topic < 0.9  # bridges only
    single = sbm.measure(_world(tmp_path, drift=0.0, noise=0.0, bridge_prob=0.0, users=1))
    assert single.session_same_topic == 1.0
    noisy = sbm.measure(_world(tmp_path, drift=0.0, noise=0.2, users=1))
    assert 0.55 < noisy.session_bridged < 0.75  # ~1 - 2 * 0.2, less the noise that lands near by chance


def test_sessions_beat_boards_on_head_and_torso_and_boards_fill_the_tail(tmp_path):
    world = _world(tmp_path, items=2_000, events=100_000, users=None, shards=1)
    fine, _ = sbm.read_items(f"{world}/{sb.ITEMS_FILE}")
    events, saves = sbm.read_shards(f"{world}/events"), sbm.read_shards(f"{world}/collections")
    board = np.unique(saves["board_id"], return_inverse=True)[1].reshape(-1)
    by_session = sbm.session_pairs(events["user_id"], events["timestamp"], events["item_id"])
    by_board = sbm.board_pairs(board, saves["item_id"])
    head, torso, tail = sbm.popularity_thirds(np.bincount(events["item_id"], minlength=2_000))
    session_p, board_p = sbm.top_k_precision(*by_session, fine), sbm.top_k_precision(*by_board, fine)
    gap = {
        name: board_p[t].mean() - session_p[t].mean()
        for name, t in [("head", head), ("torso", torso), ("tail", tail)]
    }
    assert gap["head"] < -0.03 and gap["torso"] < -0.05 and gap["tail"] > gap["head"] + 0.05
    full_session = sbm.distinct_neighbours(*by_session, 2_000)[tail] >= 10
    full_board = sbm.distinct_neighbours(*by_board, 2_000)[tail] >= 10
    assert full_session.mean() < 0.4 and full_board.mean() > 0.75


# ----------------------------------------------------------------------------------- measures on small arrays


def test_segmentation_granularity_and_drift_on_hand_made_boards():
    # Owner 0: topic 5 on boards 0 and 1 (segmented); owner 1: topic 5 on board 2 only, topic 6 saved once.
    owner = np.array([0, 0, 0, 0, 1, 1, 1])
    board = np.array([0, 0, 1, 1, 2, 2, 2])
    topic = np.array([5, 5, 5, 7, 5, 5, 6])
    assert sbm.segmentation(owner, board, topic) == 1.5  # (owner 0, 5): 2 boards; (owner 1, 5): 1
    assert sbm.granularity(board, topic) == 5 / 3
    # In time order: board 0 is 5 | 5, board 1 is 5 | 7, board 2 is 6 | 5 5 (the first half is n // 2 saves).
    timestamp = np.array([1, 2, 1, 2, 3, 2, 1])
    # boards 1 (5 -> 7) and 2 (6 -> 5)
    assert sbm.board_drift(board, timestamp, topic) == pytest.approx(2 / 3)
    assert (
        sbm.granularity(board[:0], topic[:0]) == 0.0
        and sbm.segmentation(owner[:1], board[:1], topic[:1]) == 0.0
    )


def test_tail_coverage_counts_the_bottom_third():
    engaged = np.repeat(np.arange(6), [9, 9, 5, 5, 1, 0])  # items 4 and 5 are the tail third
    coverage = sbm.tail_coverage(engaged, saved=np.array([5, 5, 0]), items=6, min_engagements=1)
    assert coverage.items == 2 and coverage.saved_share == 0.5 and coverage.engaged_share == 0.5


def test_session_locality_splits_sessions_by_user_and_gap():
    bridges = np.array([[1], [0], [3], [2]])
    user = np.array([0, 0, 0, 0, 1, 1])
    timestamp = np.array([0, 10, 20, 5_000, 0, 10])  # user 0's last event starts a new session
    topic = np.array([0, 1, 2, 2, 3, 3])
    same, bridged = sbm.session_locality(user, timestamp, topic, bridges)
    assert (same, bridged) == (1 / 3, 2 / 3)  # pairs (0,1) bridged, (1,2) neither, (3,3) same


def test_cooccurrence_pairs_and_top_k_precision():
    a, b = sbm.board_pairs(np.array([7, 7, 7, 9, 9]), np.array([0, 1, 2, 0, 3]))
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1), (0, 2), (0, 3), (1, 2)]
    a, b = sbm.session_pairs(np.zeros(4, int), np.array([0, 1, 2, 3]), np.array([0, 1, 2, 3]), window=3)
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    topic = np.array([0, 0, 1, 1, 2])
    a, b = np.array([0, 0, 0, 1]), np.array([2, 2, 1, 3])  # item 0: 2 (twice), then 1; item 1: 0 and 3 tie
    assert sbm.top_k_precision(a, b, topic, k=1).tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert sbm.top_k_precision(a, b, topic, k=2).tolist() == [0.5, 0.5, 0.0, 0.0, 0.0]
    assert sbm.distinct_neighbours(a, b, 5).tolist() == [2, 2, 1, 1, 0]
    with pytest.raises(ValueError, match="k must be"):
        sbm.top_k_precision(a, b, topic, k=0)


def test_cli_data_synthetic_boards_writes_the_world(tmp_path, capsys):
    from pipeline.cli import main

    out = tmp_path / "boards"
    argv = ["data", "synthetic", "--boards", "--items", "400", "--events", "3000", "--users", "20"]
    assert main([*argv, "--shards", "2", "--coarse-board-share", "0", "--out", str(out)]) == 0
    assert "3,000 events" in capsys.readouterr().out
    assert len(list((out / "events").glob("events-*-of-00002.csv"))) == 2
    assert len(list((out / "collections").glob("collections-*-of-00002.csv"))) == 2
    assert (out / sb.ITEMS_FILE).exists() and (out / syn.GROUND_TRUTH_FILE).exists()
    settings = json.loads((out / sb.MANIFEST_FILE).read_text())["settings"]
    assert settings["coarse_board_share"] == 0.0 and settings["zipf_exponent"] == 1.2  # the boards default
    assert main([*argv, "--segmentation", "9", "--out", str(tmp_path / "bad")]) == 1
    assert "segmentation (9) must be <= boards_per_user" in capsys.readouterr().err
