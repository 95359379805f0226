"""Which pushed source answers by default, and which index gives a table version its distances."""

import json

from formats import serving_layout
from serving.candidate_model import distance_index
from serving.related_sources import default_source


def _version(base, model, version, marker):
    directory = base / model / str(version)
    directory.mkdir(parents=True)
    (directory / marker).write_text("{}")
    return directory


def test_an_evaluation_from_before_the_next_engagement_index_falls_back_to_the_cosine_one(tmp_path):
    """Such an evaluation calls the cosine index `pin2vec`; it is in `related/`, and `pin2vec/` is empty."""
    _version(tmp_path, serving_layout.PIN2VEC_SIMILAR_MODEL, 5, "index.json")
    evaluation = _version(tmp_path, serving_layout.EVALUATION_MODEL, 5, "evaluation.json")
    values = {"ks": [10], "sources": ["pin2vec", "cooccurrence"], "best_source": "pin2vec", "splits": {}}
    (evaluation / "evaluation.json").write_text(json.dumps(values))
    assert default_source(str(tmp_path)) == "pin2vec_similar"
    _version(tmp_path, serving_layout.PIN2VEC_MODEL, 6, "index.json")
    assert default_source(str(tmp_path)) == "pin2vec"  # once it is pushed, the evaluation's choice holds


def test_a_table_pushed_without_its_model_takes_distances_from_the_newest_older_index(tmp_path):
    base = tmp_path / serving_layout.PIN2VEC_SIMILAR_MODEL
    _version(tmp_path, serving_layout.PIN2VEC_SIMILAR_MODEL, 3, "index.json")
    _version(tmp_path, serving_layout.PIN2VEC_SIMILAR_MODEL, 7, "index.json")
    (base / "9").mkdir()  # incomplete: no index.json
    assert distance_index(str(base), 7) == str(base / "7")
    assert distance_index(str(base), 9) == str(base / "7")
    assert distance_index(str(base), 5) == str(base / "3")
    assert distance_index(str(base), 2) == str(base / "2")  # none older: the same version, reported as absent
