"""bench/reference_gensim: the split is the pipeline's, gensim's neighbours are scored by metrics_lib."""

from __future__ import annotations

import json
import os
import pathlib
import random
from collections import Counter

import numpy as np
import pytest

from bench import reference_gensim as ref
from components.related_evaluator.metrics_lib import Query
from components.session_example_gen import sessions_lib
from components.session_example_gen.event_rows import Event
from components.session_example_gen.session_settings import SessionSettings

EVALUATION_FIXTURE = pathlib.Path(__file__).parents[1] / "components" / "data" / "evaluation.json"


def tiny_log(users: int = 40, seed: int = 3) -> list[Event]:
    """Users browse 3 topics of 6 items; sessions break after long gaps; items r0..r2 are rare (< 5)."""
    rng = random.Random(seed)
    events = []
    for u in range(users):
        ts = 1_000_000 + u
        topic = rng.randrange(3)
        for step in range(rng.randint(4, 14)):
            ts += rng.choice([30, 60, 0, 4000]) if step else 0  # 0: same second; 4000 s: a new session
            topic = topic if rng.random() > 0.2 else rng.randrange(3)
            events.append(Event(f"u{u}", f"t{topic}-{rng.randrange(6)}", ts))
    events += [Event("u0", "r0", 1), Event("u1", "r1", 2), Event("u1", "r2", 3)]
    rng.shuffle(events)  # the split must not depend on the log's order
    return events


def test_split_is_the_pipelines():
    events, settings = tiny_log(), SessionSettings()
    split = ref.build_split(events, settings)
    pipeline = sessions_lib.events_to_pairs(events, settings)
    assert Counter(split.validation) == Counter(Query(p.item, p.label) for p in pipeline.eval)
    assert Counter(split.test) == Counter(Query(p.item, p.label) for p in pipeline.test)
    assert len(split.test) > 20
    # Sessions give exactly the pipeline's training pairs when windowed the pipeline's way.
    pairs = Counter(
        (p.item, p.label)
        for sentence in split.sentences
        for p in sessions_lib.session_pairs(tuple((item, 0) for item in sentence), settings.window)
    )
    assert pairs == Counter((p.item, p.label) for p in pipeline.train)
    assert not {"r0", "r1", "r2"} & set(split.popularity)  # rare items are gone before anything else
    kept, _ = sessions_lib.filter_rare_items(events, settings.min_count)
    # Training counts exclude the held-out engagements (>= 2 per held-out user) and keep every other one.
    assert sum(split.popularity.values()) <= len(kept) - 2 * len(split.test)
    assert sum(split.popularity.values()) >= sum(len(sentence) for sentence in split.sentences)


def test_neighbours_are_cosine_ranked_without_the_query():
    from gensim.models import KeyedVectors

    keyed = KeyedVectors(vector_size=2)
    keyed.add_vectors(["a", "b", "c", "d"], np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32))
    answer = ref.nearest_neighbours_answer(keyed)
    assert answer(["a", "unknown", "c"], 2) == [["b", "c"], [], ["b", "a"]]
    assert answer(["d"], 10) == [["c", "b", "a"]]  # k beyond the catalogue: everything but the query


def test_gensim_metrics_on_a_tiny_log_are_in_range():
    split = ref.build_split(tiny_log(), SessionSettings())
    setting = ref.GensimSetting("tiny", vector_size=8, negative=5, epochs=3, workers=1)
    keyed, stats = ref.train_gensim(split.sentences, setting)
    assert set(keyed.index_to_key) == set(split.catalogue)
    assert stats.effective_words > 0 and stats.words_per_second > 0
    metrics = ref.evaluate_keyed_vectors(keyed, split)
    for name in ("validation", "test"):
        m = metrics[name]
        assert m["queries"] == len(split.test)
        assert 0.0 <= m["hit_rate"]["10"] <= m["hit_rate"]["20"] <= m["hit_rate"]["50"] <= 1.0
        assert 0.0 <= m["mrr"]["10"] <= m["hit_rate"]["10"]
        assert 0.0 < m["coverage"]["10"] <= 1.0
        assert sum(b["queries"] for b in m["buckets"].values()) == m["queries"]
    rows = ref.rows_from_metrics("tiny", metrics)
    assert [(r.source, r.split) for r in rows] == [("tiny", "validation"), ("tiny", "test")]


def test_project_rows_come_from_the_newest_evaluation(tmp_path):
    assert ref.find_latest_evaluation(str(tmp_path)) is None
    evaluation = json.loads(EVALUATION_FIXTURE.read_text(encoding="utf-8"))
    for execution, mtime in (("12", 100), ("31", 200)):
        directory = tmp_path / "pipeline" / "RelatedEvaluator" / "evaluation" / execution
        directory.mkdir(parents=True)
        (directory / "evaluation.json").write_text(json.dumps(evaluation))
        os.utime(directory / "evaluation.json", (mtime, mtime))
    assert ref.find_latest_evaluation(str(tmp_path)).endswith(
        os.path.join("evaluation", "31", "evaluation.json")
    )
    rows = ref.rows_from_evaluation(evaluation)
    assert len(rows) == 6
    blend_test = next(r for r in rows if r.split == "test" and "blend" in r.source)
    assert blend_test.source == "pin2vec run: blend (best on validation)"
    assert (blend_test.hit_rate["10"], blend_test.mrr_at_10, blend_test.coverage_at_10) == (
        0.1527,
        0.0618,
        0.4121,
    )
    table = ref.markdown_table(rows)
    assert (
        "| pin2vec run: blend (best on validation) | test | 943 | 0.153 | 0.224 | 0.391 | 0.062 | 0.412 |"
        in table
    )
    lines = table.splitlines()
    assert lines.index(next(line for line in lines if "| test |" in line)) > max(
        i for i, line in enumerate(lines) if "| validation |" in line
    )


def test_replace_section_touches_only_its_markers():
    document = "# Benchmarks\n\n## Other\n\nkeep me\n"
    once = ref.replace_section(document, "## Reference\n\nfirst")
    assert once.startswith(document.rstrip("\n") + "\n\n" + ref.START_MARKER + "\n## Reference\n\nfirst\n")
    twice = ref.replace_section(once + "\n## Later section\n", "## Reference\n\nsecond")
    assert "first" not in twice and "second" in twice
    assert twice.startswith(document.rstrip("\n")) and twice.endswith("\n## Later section\n")
    assert twice.count(ref.START_MARKER) == 1 == twice.count(ref.END_MARKER)
    with pytest.raises(ValueError, match="only one of"):
        ref.replace_section(f"x\n{ref.START_MARKER}\n", "y")
