"""How the Trainer gets its base model: from the warm-start resolver by default, from nothing with
`--cold-start`. (A warm start through real runs is tests/e2e/test_daily_loop.py's; what the Trainer records
when it has no base model is tests/trainer/test_warm_start.py's.)"""

from components.session_example_gen.session_settings import EventSource
from pipeline import cli
from pipeline.cli_settings import settings_from_args
from pipeline.config import PipelineSettings
from pipeline.pipeline import create_pipeline

WARM_START_RESOLVER = "warm_start_model_resolver"


def _nodes(tmp_path, settings: PipelineSettings):
    pipeline = create_pipeline("p", str(tmp_path / "root"), settings, "serving", input_fingerprint="fixed")
    return {c.id: c for c in pipeline.components}


def test_the_trainer_warm_starts_from_the_resolver_unless_cold_start(tmp_path):
    warm = _nodes(tmp_path, PipelineSettings(source=EventSource(path="events.csv")))
    assert warm["Trainer"].inputs["base_model"].producer_component_id == WARM_START_RESOLVER

    args = cli.build_parser().parse_args(["run", "--events", "events.csv", "--cold-start"])
    settings, _ = settings_from_args(args)
    assert settings.cold_start is True
    cold = _nodes(tmp_path, settings)
    assert "base_model" not in cold["Trainer"].inputs and WARM_START_RESOLVER not in cold
