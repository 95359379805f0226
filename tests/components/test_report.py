"""The run report: its view model (report_view) and its HTML and Markdown renderers show every figure of an
evaluation, escape user data and draw their charts."""

from __future__ import annotations

import copy
import json
import pathlib
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from components.related_evaluator import embedding_map_lib, provenance_lib, report_view, svg_charts
from components.related_evaluator.report_html import render_html
from components.related_evaluator.report_markdown import render_markdown, sparkline

DATA = pathlib.Path(__file__).parent / "data"
SVG = "{http://www.w3.org/2000/svg}"
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
    best, best_hr, others = report_view.headline(evaluation)
    assert (best, best_hr) == ("blend", 0.1527)
    assert [(c.source, c.hit_rate) for c in others] == [("pin2vec", 0.1018), ("cooccurrence", 0.1304)]
    assert others[1].ratio == pytest.approx(0.1527 / 0.1304)
    page = render_html(evaluation, history, TITLES)
    assert "test HR@10 <b>0.153</b> vs pin2vec 0.102 (1.50x); cooccurrence 0.130 (1.17x)" in page
    markdown = render_markdown(evaluation, history, TITLES)
    assert "test HR@10 **0.153** vs pin2vec 0.102 (1.50x); cooccurrence 0.130 (1.17x)" in markdown


def test_every_metric_of_every_source_and_split_is_shown(evaluation, history):
    page = render_html(evaluation, history, TITLES)
    markdown = render_markdown(evaluation, history, TITLES)
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
    page = render_html(evaluation, history, TITLES)
    markdown = render_markdown(evaluation, history, TITLES)
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
    page = render_html(evaluation, history, TITLES)
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
    markdown = render_markdown(evaluation, history, TITLES)
    assert "- loss: `█▄▂▁▁` 5.910 -> 3.850" in markdown
    assert "| 5 | 3.850 | 4.500 |" in markdown
    assert sparkline([1.0, 1.0]) == "▁▁"
    assert sparkline([0.0, 7.0, 3.5]) == "▁█▅"
    assert sparkline([]) == ""


def test_missing_history_gives_the_note_instead_of_a_chart(evaluation):
    page = render_html(evaluation, None, TITLES)
    assert report_view.NO_HISTORY_NOTE in page
    assert "Training loss per epoch" not in chart_titles(page)
    assert len(svgs(page)) == 3
    assert report_view.NO_HISTORY_NOTE in render_markdown(evaluation, None, TITLES)
    # A history without usable values is no history either.
    assert report_view.NO_HISTORY_NOTE in render_html(
        evaluation, {"loss": [], "val_loss": [float("nan")]}, {}
    )


def test_chosen_blend_weight_is_marked(evaluation, history):
    page = render_html(evaluation, history, TITLES)
    assert "<tr class=chosen><td>0.3 ← chosen</td><td>0.159</td><td>0.065</td></tr>" in page
    assert page.count("class=chosen") == 1
    sweep = svgs(page)[3]
    assert "chosen 0.3" in [t.text for t in sweep.iter("{http://www.w3.org/2000/svg}text")]
    markdown = render_markdown(evaluation, history, TITLES)
    assert "| **0.3** (chosen) | 0.159 | 0.065 |" in markdown
    evaluation["blend"]["weight"] = 0.7
    assert "<tr class=chosen><td>0.7 ← chosen</td>" in render_html(evaluation, history, TITLES)


def test_examples_side_by_side_with_titles_escaped(evaluation, history):
    evaluation = copy.deepcopy(evaluation)
    evaluation["examples"][2]["lists"]["cooccurrence"].append(["<img src=x onerror=alert(2)>", 3.0])
    page = render_html(evaluation, history, TITLES)
    assert "<h3>Star Wars (1977) (50)</h3>" in page
    assert "Return of the Jedi (1983) (181)" in page
    assert "Toy Story &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co (1)" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page and "<img" not in page
    assert "<h3>258</h3>" in page  # no title: the id
    example = page.split('<div class="example">')[1]  # the first example: item 50
    assert example.startswith("<h3>Star Wars")
    assert re.findall(r'</span>(\w+) <span class="score">scores: ([^<]+)</span></div>', example) == [
        ("pin2vec", "inner product, unbounded"),
        ("cooccurrence", "damped count, &gt;= 0"),
        ("blend", "RRF score, 0..0.0909"),  # rrf_k 10
    ]
    assert len(re.findall(r"<li>", example)) == 15  # 5 candidates per source
    assert '<p class="note">no candidates</p>' in page  # the tail item co-occurrence knows nothing about
    markdown = render_markdown(evaluation, history, TITLES)
    assert "| 1 | " + " | ".join(["Return of the Jedi (1983) (181)"] * 3) + " |" in markdown
    assert "Toy Story &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co (1)" in markdown
    assert "<script" not in markdown


def test_page_is_self_contained(evaluation, history):
    page = render_html(evaluation, history, TITLES)
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
        render_html(broken, history, TITLES)
    broken = copy.deepcopy(evaluation)
    del broken["splits"]["validation"]["blend"]["mrr"]["50"]
    with pytest.raises(ValueError, match=r"\['validation'\]\['blend'\]\['mrr'\] lacks K=\[50\]"):
        render_markdown(broken, history, TITLES)
    with pytest.raises(ValueError, match="evaluation has no 'blend'"):
        render_html({k: v for k, v in evaluation.items() if k != "blend"}, None, {})


def test_fusion_constants_tried_are_summarised(evaluation, history):
    evaluation = copy.deepcopy(evaluation)
    evaluation["blend"]["rrf_k_sweep"] = [
        {"rrf_k": 1.0, "weight": 0.2, "hit_rate_at_10": 0.1336, "mrr_at_10": 0.05},
        {"rrf_k": 60.0, "weight": 0.4, "hit_rate_at_10": 0.141, "mrr_at_10": 0.05},
    ]
    for text in (
        render_markdown(evaluation, history, {}),
        render_html(evaluation, history, {}),
    ):
        assert "rrf_k 1: HR@10 0.134 at weight 0.2; rrf_k 60: HR@10 0.141 at weight 0.4" in text


def test_paired_differences_against_the_best_source_mark_what_is_beyond_noise(evaluation, history):
    rows = dict(report_view.paired_rows(evaluation, "test"))
    assert list(rows) == ["pin2vec", "cooccurrence"]
    overall, head, torso, tail = rows["cooccurrence"]
    assert (overall.text, overall.clear) == ("-0.022 [-0.041, -0.003]", True)
    assert (head.text, head.clear) == ("-0.023 [-0.047, +0.001]", False)
    assert not torso.clear and not tail.clear
    page = render_html(evaluation, history, TITLES)
    assert "<h3>Against blend, paired</h3>" in page
    assert "<td class=top>-0.022 [-0.041, -0.003]</td><td>-0.023 [-0.047, +0.001]</td>" in page
    markdown = render_markdown(evaluation, history, TITLES)
    assert "### Against blend, paired" in markdown
    assert "| cooccurrence | **-0.022 [-0.041, -0.003]** | -0.023 [-0.047, +0.001] |" in markdown


def test_an_evaluation_without_comparisons_renders_without_the_paired_table(evaluation, history):
    del evaluation["comparisons"]
    assert report_view.paired_rows(evaluation, "test") == []
    assert "paired" not in render_html(evaluation, history, TITLES)
    assert "paired" not in render_markdown(evaluation, history, TITLES)


def test_headline_says_whether_the_lead_is_within_noise_and_warns_on_small_samples(evaluation, history):
    assert report_view.noise_note(evaluation) == (
        "Its lead over every other source is beyond noise (every paired 95% interval excludes 0)."
    )
    test = evaluation["comparisons"]["splits"]["test"]
    test["cooccurrence"]["high"] = 0.004
    for source in evaluation["sources"]:
        evaluation["splits"]["test"][source]["queries"] = 40
    note = report_view.noise_note(evaluation)
    assert note.startswith("Its lead over cooccurrence is within noise (the paired 95% interval includes 0).")
    assert "Only 40 test queries" in note
    assert note in render_markdown(evaluation, history, TITLES)
    del evaluation["comparisons"]
    assert report_view.noise_note(evaluation).startswith(
        "Only 40 test queries (under 300)"
    )  # warns regardless
    for source in evaluation["sources"]:
        evaluation["splits"]["test"][source]["queries"] = report_view.SMALL_SAMPLE
    assert report_view.noise_note(evaluation) == ""


def test_a_lead_within_noise_gets_no_ratio_and_no_best_source_claim(evaluation, history):
    evaluation["comparisons"]["splits"]["test"]["cooccurrence"]["high"] = 0.004  # includes 0 now
    assert report_view.within_noise(evaluation) == ["cooccurrence"]
    page = render_html(evaluation, history, TITLES)
    markdown = render_markdown(evaluation, history, TITLES)
    for text in (page, markdown):
        assert "was chosen on the validation split but is not clearly the best" in text
        assert "is the best source" not in text
        assert "cooccurrence 0.130 (within noise)" in text
        assert "1.17x" not in text  # the ratio a reader would take as a real lead
        assert "pin2vec 0.102 (1.50x)" in text  # beyond noise: the ratio stays


def test_every_source_has_its_score_scale(evaluation):
    evaluation["provenance"] = {"settings": {"cooccurrence.popularity_exponent": 0.25}}
    sources = ("pin2vec", "pin2vec_similar", "cooccurrence")
    scale = {s: report_view.score_scale(s, evaluation) for s in sources}
    assert scale["pin2vec"].unit == "inner product, unbounded"
    assert scale["pin2vec_similar"].meaning == "cosine similarity of the two item embeddings, in [-1, 1]."
    assert "co-occurrences^0.25" in scale["cooccurrence"].meaning
    assert (
        "^0.5"
        in report_view.score_scale(
            "board", {"provenance": {"settings": {"board.board_size_exponent": 0.5}}, "blend": {}}
        ).meaning
    )
    assert report_view.score_scale("blend", evaluation).unit == "RRF score, 0..0.0909"
    evaluation["blend"]["method"] = "rerank"
    assert report_view.score_scale("blend", evaluation).unit == "reranker score, unbounded"
    assert report_view.score_scale("something new", evaluation).meaning == "scale not recorded."


def test_scatter_chart_keeps_one_scale_on_both_axes_and_escapes_labels():
    groups = [
        svg_charts.PointGroup("tail", "#2563eb", [(0.0, 0.0, "a"), (2.0, 0.0, "b")]),
        svg_charts.PointGroup("head", "#dc2626", [(0.0, 1.0, "<c>")]),
    ]
    svg = svg_charts.scatter_chart(svg_charts.Chart("map", "x", "y", 600, 500), groups, [(0.0, 1.0, "<c&d>")])
    root = ET.fromstring(svg)
    circles = [c for c in root.iter(f"{SVG}circle") if c.find(f"{SVG}title") is not None]
    assert [c.findtext(f"{SVG}title") for c in circles] == ["a", "b", "<c>"]
    (ax, ay), (bx, by), (cx, cy) = [(float(c.get("cx")), float(c.get("cy"))) for c in circles]
    assert by == ay and cx == ax and cy < ay  # up is up
    assert (bx - ax) == pytest.approx(2 * (ay - cy), abs=0.2)  # 2 units across = twice 1 unit up
    assert "<c&d>" in [t.text for t in root.iter(f"{SVG}text")]
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert legend == ["head (1)", "tail (2)"]  # the group drawn on top first
    assert "nothing to draw" in svg_charts.scatter_chart(svg_charts.Chart("m", "x", "y"), [], [])


def full_fixture(evaluation: dict) -> dict:
    """The hand-made evaluation plus the sections the RelatedEvaluator now writes: provenance and the map."""
    rng = np.random.default_rng(0)
    ids = ["50", "181", "1", *(str(k) for k in range(1000, 1300))]
    evaluation["embedding_map"] = embedding_map_lib.embedding_map(
        ids,
        rng.normal(size=(len(ids), 8)),
        np.arange(len(ids)) % 3,
        report_view.BUCKETS,
        np.arange(len(ids))[::-1].copy(),
        first=["50"],
        titled=TITLES.keys(),
        max_points=200,
    )
    evaluation["provenance"] = provenance_lib.build_provenance(
        settings={"source": {"path": "/data/<events>.csv"}, "trainer": {"epochs": 25}},
        counts={
            "events_read": 100000,
            "bad_rows": 3,
            "sessions": 4200,
            "pairs_train": 80000,
            "vocabulary": 1342,
        },
        input_fingerprint="sha256:feed",
        code={"git_commit": "abcdef0123456789", "git_dirty": False, "evaluator_version": "ev1"},
        written_at="2026-01-02T03:04:05Z",
    )
    return evaluation


def test_the_full_report_has_every_block(evaluation, history):
    evaluation = full_fixture(evaluation)
    page = render_html(evaluation, history, TITLES)
    markdown = render_markdown(evaluation, history, TITLES)
    # Provenance: input, fingerprint, counts, settings, code, version, date.
    for text in (page, markdown):
        assert "/data/&lt;events&gt;.csv (fingerprint sha256:feed)" in text
        assert (
            "events read 100,000 · bad rows (quarantined) 3 · sessions 4,200 · training pairs 80,000" in text
        )
        assert "vocabulary (items indexed) 1,342" in text
        assert "git commit abcdef012345; evaluator code ev1" in text
        assert "candidate: this report is written before the push" in text
        assert "2026-01-02T03:04:05Z (UTC)" in text
        assert "trainer.epochs" in text
        assert "Training loss was still falling at the end (2.8% in the last epoch" in text  # the reading
        assert "reciprocal-rank fusion: weight / (rrf_k + rank)" in text  # the score scales
        assert "200 of 303 embedded items" in text  # the map's caption
    assert "<details><summary>All 2 settings of the run</summary>" in page
    assert '<p class="reading">Training loss was still falling' in page
    assert chart_titles(page) == [
        "Training loss per epoch",
        "HR@K on the test split",
        "Test HR@10 by query popularity",
        "Blend weight sweep (validation)",
        "Item embeddings in 2-D (PCA), by popularity bucket",
    ]
    embedding = svgs(page)[4]
    tips = [
        c.findtext(f"{SVG}title") for c in embedding.iter(f"{SVG}circle") if c.find(f"{SVG}title") is not None
    ]
    assert len(tips) == 200
    assert "Star Wars (1977) (50) · " in " ".join(tips)
    labels = [t.text for t in embedding.iter(f"{SVG}text")]
    assert "Star Wars (1977)" in labels and "Return of the Jedi (1983)" in labels  # example, then titled
    assert "Toy Story <script>alert(1)<…" in labels  # cut at 28 characters, and escaped in the page
    assert "<script" not in page
    assert len(page.encode()) < 400_000


def test_an_older_evaluation_says_it_has_no_provenance_or_map(evaluation, history):
    page = render_html(evaluation, history, TITLES)
    assert report_view.NO_PROVENANCE_NOTE in page
    assert "No embedding map was recorded for this run." in page
    assert report_view.NO_PROVENANCE_NOTE in render_markdown(evaluation, history, TITLES)


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
        render_html(evaluation, history, {}),
        render_markdown(evaluation, None, {}),
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
    page = render_html(evaluation, history, {})
    assert "Not measured: nothing was served under /s &lt;yet&gt;." in page
    assert "Not measured: nothing was served" in render_markdown(evaluation, None, {})
    del evaluation["stability"]  # written before stability existed: no section
    assert "Neighbour stability" not in render_html(evaluation, history, {})
