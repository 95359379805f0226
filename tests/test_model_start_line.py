"""The run summary's one line on how the Trainer started the model."""

import dataclasses
import io

from pipeline.config import RunSettings
from pipeline.report import model_start_line, print_summary
from pipeline.summary import RunSummary

WARM = RunSummary(
    warm_start=True,
    items_carried_over=812,
    items_new=37,
    items_dropped=12,
    warm_start_base_model="/out/pipeline/Trainer/model/7",
)


def test_a_warm_start_names_its_base_and_the_items_carried_new_and_dropped(tmp_path):
    assert model_start_line(WARM) == (
        "Trainer: warm start from /out/pipeline/Trainer/model/7: 812 items carried over, 37 new, "
        "12 dropped (--cold-start to retrain from scratch)"
    )
    out = io.StringIO()
    result = {"seconds": 3.0, "components": [], "log_file": str(tmp_path / "run.log")}
    print_summary(WARM, RunSettings(output_dir=str(tmp_path)), result, stream=out)
    text = out.getvalue()
    assert text.index("Data:") < text.index("Trainer: warm start") < text.index("Evaluator gate")


def test_a_cold_start_says_why_and_an_older_artifact_says_nothing():
    cold = RunSummary(warm_start=False, items_new=861)
    assert model_start_line(cold) == (
        "Trainer: cold start, 861 items (--cold-start, or no blessed model trained on other examples)"
    )
    refused = dataclasses.replace(cold, warm_start_note="the base model has embeddings of shape (16,)")
    assert model_start_line(refused).endswith("(the base model has embeddings of shape (16,))")
    assert model_start_line(RunSummary()) == ""
