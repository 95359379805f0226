"""One DirectRunner run of the real pipeline on tiny data, shared by the tests that read it (the local
pipeline tests) and those that compare another runner with it (the portable runner test): each costs
minutes."""

import pytest

from components.scann_indexer.index_lib import IndexSettings
from components.session_example_gen.session_settings import EventSource, SessionSettings
from pipeline.config import PipelineSettings, RunSettings
from pipeline.local_runner import run_local
from tests.e2e.tiny_log import write_tiny_collections, write_tiny_log
from trainer_module.model import TrainerSettings


def tiny_settings(root) -> PipelineSettings:
    """Writes the tiny log (one malformed row) and collections under `root`; the settings that read them."""
    log = root / "events.tsv"
    write_tiny_log(log, bad_rows=["u1\t\t3\t880000000"])
    collections = root / "boards.csv"
    write_tiny_collections(collections)
    return PipelineSettings(
        source=EventSource(path=str(log)),
        collections=EventSource(path=str(collections), user_col="board", item_col="pin", time_col=None),
        sessions=SessionSettings(min_count=3),
        trainer=TrainerSettings(embedding_dim=16, num_negatives=8, epochs=3, batch_size=64),
        index=IndexSettings(min_recall=0.5),
    )


@pytest.fixture(scope="session")
def direct_run(tmp_path_factory):
    """(settings, run settings, run_local's result) of a first run with the in-process DirectRunner."""
    root = tmp_path_factory.mktemp("e2e")
    settings = tiny_settings(root)
    # In-process Beam keeps the test quick; the multi-process default is exercised by `make demo`.
    run = RunSettings(output_dir=str(root / "out"), beam_args=("--runner=DirectRunner",))
    return settings, run, run_local(settings, run)
