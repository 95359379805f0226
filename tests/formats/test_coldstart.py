"""The fallback order and the coverage figure, on hand-made tables."""

import numpy as np
import pytest

from formats import candidate_table, coldstart


def _table(lists, popularity, top_n=3):
    return candidate_table.from_lists(lists, popularity, top_n)


COLD = _table(
    {"a": [("b", 2.0)], "b": [("a", 2.0)], "rare": [("a", 1.0)]},
    {"a": 9, "b": 5, "rare": 1, "lonely": 1, "z": 7},
)


def test_chain_starts_with_the_default_and_lists_each_source_once():
    assert coldstart.fallback_chain("pin2vec") == ("pin2vec", "cooccurrence", "board", "coldstart")
    assert coldstart.fallback_chain("board") == ("board", "cooccurrence", "coldstart")


def test_first_source_that_has_a_list_answers_then_popular_then_unknown():
    chain = coldstart.fallback_chain("pin2vec")
    answerable = {"pin2vec": {"a"}, "cooccurrence": {"a", "b"}, "board": {"rare"}, "coldstart": {"rare", "b"}}
    engaged = set(COLD.items)
    by_item = {i: coldstart.answering_source(i, chain, answerable, engaged) for i in [*COLD.items, "nope"]}
    assert by_item == {
        "a": "pin2vec",
        "b": "cooccurrence",
        "rare": "board",  # board before coldstart
        "lonely": "popular",
        "z": "popular",
        "nope": None,  # not engaged in the window: genuinely unknown
    }


def test_a_source_missing_from_the_run_is_skipped():
    chain = coldstart.fallback_chain("cooccurrence")
    assert coldstart.answering_source("rare", chain, {"coldstart": {"rare"}}, {"rare"}) == "coldstart"


def test_answerable_items_skip_empty_rows():
    assert coldstart.answerable_items(COLD) == {"a", "b", "rare"}


def test_coverage_shares_add_up_and_name_the_fallback():
    chain = coldstart.fallback_chain("pin2vec")
    answerable = {"pin2vec": {"a"}, "coldstart": coldstart.answerable_items(COLD)}
    figure = coldstart.coverage(COLD.items, chain, answerable)
    assert figure["engaged_items"] == 5 and figure["answered"] == 1.0 and figure["unanswered_items"] == 0
    assert figure["by_source"] == {"pin2vec": 0.2, "coldstart": 0.4, "popular": 0.4}
    assert figure["order"][-1] == "popular"
    assert sum(figure["by_source"].values()) == pytest.approx(figure["answered"])


def test_coverage_counts_what_no_source_answers():
    figure = coldstart.coverage(["a", "x"], ("pin2vec",), {"pin2vec": {"a"}})
    # "x" is in the engaged list, so it still gets the popular fallback; only nothing engaged is None
    assert figure["answered"] == 1.0 and figure["by_source"] == {"pin2vec": 0.5, "popular": 0.5}
    assert coldstart.coverage([], ("pin2vec",), {})["answered"] is None


def test_cold_answers_use_the_table_then_the_most_engaged_items():
    answers = coldstart.ColdStartAnswers(COLD)
    assert answers.source_of("rare") == "coldstart"
    assert answers.candidates("rare", 2) == [("a", 1.0)]
    assert answers.source_of("lonely") == "popular"
    # most engaged first, the item itself left out; scores are engagement counts
    assert answers.candidates("lonely", 3) == [("a", 9.0), ("z", 7.0), ("b", 5.0)]
    assert answers.candidates("a", 1) == [("b", 2.0)]
    assert answers.source_of("nope") is None and answers.candidates("nope", 3) is None


def test_popular_ties_go_to_the_smaller_id():
    table = _table({}, {"c": 1, "b": 1, "a": 1}, top_n=2)
    assert [i for i, _ in coldstart.ColdStartAnswers(table).candidates("c", 2)] == ["a", "b"]
    assert np.all(table.neighbours < 0)


def test_coverage_line_says_the_popular_answers_are_a_fallback():
    figure = coldstart.coverage(["a", "b"], ("pin2vec",), {"pin2vec": {"a"}})
    line = coldstart.describe_coverage(figure)
    assert (
        line == "Items engaged in the window answered: 100.0% of 2 (pin2vec 50.0%, popular (fallback) 50.0%)"
    )
    assert coldstart.describe_coverage(None) == ""
