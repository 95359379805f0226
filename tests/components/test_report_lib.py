"""report_lib: the run report renders every figure of an evaluation, escapes user data, draws its charts."""

from __future__ import annotations

import copy
import json
import pathlib
import re
import xml.etree.ElementTree as ET

import pytest

from components.related_evaluator import report_lib

DATA = pathlib.Path(__file__).parent / "data"
TITLES = {
    "50": "Star Wars (1977)",
    "181": "Return of the Jedi (1983)",
    "1": "Toy Story <script>alert(1)</script> & Co",
}


@pytest.fixture
def evaluation() -> dict:
    """The hand-made evaluation dict (tests/components/data/evaluation.json, reusable by other tests)."""
    return json.loads((DATA / "evaluation.json").read_text(encoding="utf-8"))


@pytest.fixture
def history() -> dict:
    return json.loads((DATA / "history.json").read_text(encoding="utf-8"))


def svgs(page: str) -> list[ET.Element]:
    """Every inline chart, parsed: an SVG that is not well-formed XML does not render."""
    return [ET.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", page, re.S)]


def chart_titles(page: str) -> list[str]:
    return [svg.findtext("{http://www.w3.org/2000/svg}title") for svg in svgs(page)]


def test_headline_names_the_best_source_and_its_ratios(evaluation, history):
    best, best_hr, others = report_lib.headline(evaluation)
    assert (best, best_hr) == ("blend", 0.1527)
    assert [(c.source, c.hit_rate) for c in others] == [("pin2vec", 0.1018), ("cooccurrence", 0.1304)]
    assert others[1].ratio == pytest.approx(0.1527 / 0.1304)
    page = report_lib.render_html(evaluation, history, TITLES)
    assert "test HR@10 <b>0.153</b> vs pin2vec 0.102 (1.50x); cooccurrence 0.130 (1.17x)" in page
    markdown = report_lib.render_markdown(evaluation, history, TITLES)
    assert "test HR@10 **0.153** vs pin2vec 0.102 (1.50x); cooccurrence 0.130 (1.17x)" in markdown


def test_every_metric_of_every_source_and_split_is_shown(evaluation, history):
    page = report_lib.render_html(evaluation, history, TITLES)
    markdown = report_lib.render_markdown(evaluation, history, TITLES)
    for split in ("validation", "test"):
        for source in evaluation["sources"]:
            metrics = evaluation["splits"][split][source]
            values = [
                metrics[family][str(k)] for family in ("hit_rate", "mrr", "coverage") for k in (10, 20, 50)
            ]
            cells = [f"{v:.3f}" for v in values]
            row = f"| {split} | {source} | 943 | {metrics['answered']:.3f} | " + " | ".join(cells) + " |"
            assert row in markdown
            html_row = re.search(
                rf'<tr><td class="l">{split}</td><td class="l"><span[^>]*></span>{source}</td>(.*?)</tr>',
                page,
            )
            assert html_row, (split, source)
            assert re.findall(r"<td[^>]*>([0-9.]+)</td>", html_row.group(1)) == [
                "943",
                f"{metrics['answered']:.3f}",
                *cells,
            ]


def test_popularity_bucket_table(evaluation, history):
    page = report_lib.render_html(evaluation, history, TITLES)
    markdown = report_lib.render_markdown(evaluation, history, TITLES)
    assert "| head | 520 | 0.119 / 0.048 | 0.148 / 0.060 | 0.171 / 0.069 |" in markdown
    assert "| tail | 122 | 0.066 / 0.027 | 0.082 / 0.034 | 0.107 / 0.043 |" in markdown
    tail = re.search(r'<tr><td class="l">tail</td>(.*?)</tr>', page).group(1)
    assert re.findall(r"<td[^>]*>([0-9.]+)</td>", tail) == [
        "122",
        "0.066",
        "0.027",
        "0.082",
        "0.034",
        "0.107",
        "0.043",
    ]
    assert "<td class=top>0.107</td>" in tail  # the best source of the bucket stands out


def test_one_svg_per_chart_and_the_loss_curve_draws_every_epoch(evaluation, history):
    page = report_lib.render_html(evaluation, history, TITLES)
    assert chart_titles(page) == [
        "Training loss per epoch",
        "HR@K on the test split",
        "Test HR@10 by query popularity",
        "Blend weight sweep (validation)",
    ]
    loss = svgs(page)[0]
    polylines = loss.findall("{http://www.w3.org/2000/svg}polyline")
    assert [len(p.get("points").split()) for p in polylines] == [5, 5]  # loss and val_loss, 5 epochs each
    hit_rate = svgs(page)[1]
    assert len(hit_rate.findall("{http://www.w3.org/2000/svg}polyline")) == 3  # one curve per source
    bars = svgs(page)[2].findall("{http://www.w3.org/2000/svg}rect")
    assert len([b for b in bars if b.find("{http://www.w3.org/2000/svg}title") is not None]) == 9
    # Higher HR draws higher (smaller y): blend's head bar is above pin2vec's.
    heights = {
        b.findtext("{http://www.w3.org/2000/svg}title"): float(b.get("height"))
        for b in bars
        if b.get("height")
    }
    assert heights["blend, head: 0.1712"] > heights["pin2vec, head: 0.1192"]


def test_loss_as_sparkline_and_table_in_markdown(history, evaluation):
    markdown = report_lib.render_markdown(evaluation, history, TITLES)
    assert "- loss: `█▄▂▁▁` 5.910 -> 3.850" in markdown
    assert "| 5 | 3.850 | 4.500 |" in markdown
    assert report_lib.sparkline([1.0, 1.0]) == "▁▁"
    assert report_lib.sparkline([0.0, 7.0, 3.5]) == "▁█▅"
    assert report_lib.sparkline([]) == ""


def test_missing_history_gives_the_note_instead_of_a_chart(evaluation):
    page = report_lib.render_html(evaluation, None, TITLES)
    assert report_lib.NO_HISTORY_NOTE in page
    assert "Training loss per epoch" not in chart_titles(page)
    assert len(svgs(page)) == 3
    assert report_lib.NO_HISTORY_NOTE in report_lib.render_markdown(evaluation, None, TITLES)
    # A history without usable values is no history either.
    assert report_lib.NO_HISTORY_NOTE in report_lib.render_html(
        evaluation, {"loss": [], "val_loss": [float("nan")]}, {}
    )


def test_chosen_blend_weight_is_marked(evaluation, history):
    page = report_lib.render_html(evaluation, history, TITLES)
    assert "<tr class=chosen><td>0.3 ← chosen</td><td>0.159</td><td>0.065</td></tr>" in page
    assert page.count("class=chosen") == 1
    sweep = svgs(page)[3]
    assert "chosen 0.3" in [t.text for t in sweep.iter("{http://www.w3.org/2000/svg}text")]
    markdown = report_lib.render_markdown(evaluation, history, TITLES)
    assert "| **0.3** (chosen) | 0.159 | 0.065 |" in markdown
    evaluation["blend"]["weight"] = 0.7
    assert "<tr class=chosen><td>0.7 ← chosen</td>" in report_lib.render_html(evaluation, history, TITLES)


def test_examples_side_by_side_with_titles_escaped(evaluation, history):
    evaluation = copy.deepcopy(evaluation)
    evaluation["examples"][2]["lists"]["cooccurrence"].append(["<img src=x onerror=alert(2)>", 3.0])
    page = report_lib.render_html(evaluation, history, TITLES)
    assert "<h3>Star Wars (1977) (50)</h3>" in page
    assert "Return of the Jedi (1983) (181)" in page
    assert "Toy Story &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co (1)" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page and "<img" not in page
    assert "<h3>258</h3>" in page  # no title: the id
    example = page.split('<div class="example">')[1]  # the first example: item 50
    assert example.startswith("<h3>Star Wars")
    assert re.findall(r"</span>(\w+)</div>", example) == ["pin2vec", "cooccurrence", "blend"]
    assert len(re.findall(r"<li>", example)) == 15  # 5 candidates per source
    assert '<p class="note">no candidates</p>' in page  # the tail item co-occurrence knows nothing about
    markdown = report_lib.render_markdown(evaluation, history, TITLES)
    assert "| 1 | " + " | ".join(["Return of the Jedi (1983) (181)"] * 3) + " |" in markdown
    assert "Toy Story &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co (1)" in markdown
    assert "<script" not in markdown


def test_page_is_self_contained(evaluation, history):
    page = report_lib.render_html(evaluation, history, TITLES)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page
    assert set(re.findall(r"https?://[^\s\"']+", page)) == {
        "http://www.w3.org/2000/svg"
    }  # a namespace, not a fetch
    assert not re.search(r"<(script|link|img|iframe)\b", page)


def test_malformed_evaluation_names_what_is_missing(evaluation, history):
    broken = copy.deepcopy(evaluation)
    del broken["splits"]["test"]["cooccurrence"]
    with pytest.raises(ValueError, match=r"evaluation\['splits'\]\['test'\] has no source 'cooccurrence'"):
        report_lib.render_html(broken, history, TITLES)
    broken = copy.deepcopy(evaluation)
    del broken["splits"]["validation"]["blend"]["mrr"]["50"]
    with pytest.raises(ValueError, match=r"\['validation'\]\['blend'\]\['mrr'\] lacks K=\[50\]"):
        report_lib.render_markdown(broken, history, TITLES)
    with pytest.raises(ValueError, match="evaluation has no 'blend'"):
        report_lib.render_html({k: v for k, v in evaluation.items() if k != "blend"}, None, {})


def test_fusion_constants_tried_are_summarised(evaluation, history):
    evaluation = copy.deepcopy(evaluation)
    evaluation["blend"]["rrf_k_sweep"] = [
        {"rrf_k": 1.0, "weight": 0.2, "hit_rate_at_10": 0.1336, "mrr_at_10": 0.05},
        {"rrf_k": 60.0, "weight": 0.4, "hit_rate_at_10": 0.141, "mrr_at_10": 0.05},
    ]
    for text in (
        report_lib.render_markdown(evaluation, history, {}),
        report_lib.render_html(evaluation, history, {}),
    ):
        assert "rrf_k 1: HR@10 0.134 at weight 0.2; rrf_k 60: HR@10 0.141 at weight 0.4" in text


def test_paired_differences_against_the_best_source_mark_what_is_beyond_noise(evaluation, history):
    rows = dict(report_lib.paired_rows(evaluation, "test"))
    assert list(rows) == ["pin2vec", "cooccurrence"]
    overall, head, torso, tail = rows["cooccurrence"]
    assert (overall.text, overall.clear) == ("-0.022 [-0.041, -0.003]", True)
    assert (head.text, head.clear) == ("-0.023 [-0.047, +0.001]", False)
    assert not torso.clear and not tail.clear
    page = report_lib.render_html(evaluation, history, TITLES)
    assert "<h3>Against blend, paired</h3>" in page
    assert "<td class=top>-0.022 [-0.041, -0.003]</td><td>-0.023 [-0.047, +0.001]</td>" in page
    markdown = report_lib.render_markdown(evaluation, history, TITLES)
    assert "### Against blend, paired" in markdown
    assert "| cooccurrence | **-0.022 [-0.041, -0.003]** | -0.023 [-0.047, +0.001] |" in markdown


def test_an_evaluation_without_comparisons_renders_without_the_paired_table(evaluation, history):
    del evaluation["comparisons"]
    assert report_lib.paired_rows(evaluation, "test") == []
    assert "paired" not in report_lib.render_html(evaluation, history, TITLES)
    assert "paired" not in report_lib.render_markdown(evaluation, history, TITLES)


def test_headline_says_whether_the_lead_is_within_noise_and_warns_on_small_samples(evaluation, history):
    assert report_lib.noise_note(evaluation) == (
        "Its lead over every other source is beyond noise (every paired 95% interval excludes 0)."
    )
    test = evaluation["comparisons"]["splits"]["test"]
    test["cooccurrence"]["high"] = 0.004
    for source in evaluation["sources"]:
        evaluation["splits"]["test"][source]["queries"] = 40
    note = report_lib.noise_note(evaluation)
    assert note.startswith("Its lead over cooccurrence is within noise (the paired 95% interval includes 0).")
    assert "Only 40 test queries" in note
    assert note in report_lib.render_markdown(evaluation, history, TITLES)
    del evaluation["comparisons"]
    assert report_lib.noise_note(evaluation) == ""


STABILITY = {
    "k": 10,
    "source": "blend",
    "served_source": "cooccurrence",
    "served_version": 17,
    "overlap_at_10": 0.8125,
    "items": 40,
    "buckets": {"head": {"overlap_at_10": 0.9, "items": 10}, "torso": {"overlap_at_10": None, "items": 0}},
    "sources": {"cooccurrence": {"served_version": 17, "overlap_at_10": 0.5, "items": 40, "buckets": {}}},
    "reason": None,
}


def test_the_report_shows_neighbour_stability_against_the_served_version(evaluation, history):
    evaluation["stability"] = STABILITY
    for page in (
        report_lib.render_html(evaluation, history, {}),
        report_lib.render_markdown(evaluation, None, {}),
    ):
        assert "Neighbour stability against the served version" in page
        assert "0.812" in page and "0.900" in page and "0.500" in page
        assert "serving now: cooccurrence" in page and "17" in page


def test_the_report_says_why_stability_was_not_measured(evaluation, history):
    evaluation["stability"] = {
        "overlap_at_10": None,
        "reason": "nothing was served under /s <yet>",
        "sources": {},
    }
    page = report_lib.render_html(evaluation, history, {})
    assert "Not measured: nothing was served under /s &lt;yet&gt;." in page
    assert "Not measured: nothing was served" in report_lib.render_markdown(evaluation, None, {})
    del evaluation["stability"]  # written before stability existed: no section
    assert "Neighbour stability" not in report_lib.render_html(evaluation, history, {})
