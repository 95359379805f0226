"""The code fingerprint each pipeline step carries: which modules it covers, and when it changes."""

import json

import pytest
import tomllib

from components.code_version import (
    CODE_VERSION_KEY,
    PROJECT_PACKAGES,
    PROJECT_ROOT,
    code_version,
    module_closure,
)
from components.session_example_gen.session_settings import EventSource
from pipeline.config import PipelineSettings
from pipeline.pipeline import create_pipeline
from tests.e2e.expected import COMPONENTS


@pytest.fixture
def project(tmp_path):
    """app.step imports app.lib (which imports util.text relatively and numpy); app.other is unrelated."""
    files = {
        "app/__init__.py": "",
        "app/step.py": "import numpy\nfrom app import lib\n",
        "app/lib.py": "def f():\n    from ..util.text import clean\n    return clean\n",
        "app/other.py": "X = 1\n",
        "util/__init__.py": "",
        "util/text.py": "def clean(s):\n    return s.strip()\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _version(project, *roots):
    return code_version(*roots, root=project, packages=("app", "util"))


def test_closure_follows_imports_inside_functions_and_relative_ones(project):
    closure = module_closure(["app.step"], root=project, packages=("app", "util"))
    assert sorted(closure) == ["app", "app.lib", "app.step", "util", "util.text"]
    assert closure["util.text"] == project / "util" / "text.py"


def test_version_changes_with_an_imported_module_and_not_with_an_unrelated_one(project):
    before = _version(project, "app.step")
    (project / "app" / "other.py").write_text("X = 2\n")
    assert _version(project, "app.step") == before
    (project / "util" / "text.py").write_text("def clean(s):\n    return s.strip().lower()\n")
    changed = _version(project, "app.step")
    assert changed != before and len(changed) == 16
    assert _version(project, "app.step") == changed  # deterministic


def test_an_unknown_root_is_an_error_that_names_it(project):
    with pytest.raises(ValueError, match=r"app\.missing"):
        _version(project, "app.missing")


def test_project_packages_are_the_ones_pyproject_ships():
    include = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(pattern.rstrip("*") for pattern in include["find"]["include"]) == sorted(PROJECT_PACKAGES)


def test_the_trainer_version_covers_the_trainer_and_not_the_cli():
    closure = module_closure(["trainer_module.run"])
    assert {"trainer_module.model", "trainer_module.sampled_softmax", "trainer_module.input_pipeline"} <= set(
        closure
    )
    assert not any(name.startswith(("pipeline", "components", "serving")) for name in closure)


def test_every_step_with_project_code_carries_its_code_version(tmp_path):
    log = tmp_path / "events.tsv"
    log.write_text("u1\ti1\t5\t1\n")
    settings = PipelineSettings(source=EventSource(path=str(log)))
    pipeline = create_pipeline("p", str(tmp_path / "root"), settings, str(tmp_path / "serving"))
    versions = {}
    for node in pipeline.components:
        properties = node.exec_properties
        config = properties.get("custom_config")
        if CODE_VERSION_KEY in properties:
            versions[node.id] = properties[CODE_VERSION_KEY]
        elif config:
            versions[node.id] = json.loads(config)[CODE_VERSION_KEY]
        elif node.id == "Evaluator":
            metric = json.loads(properties["eval_config"])["metrics_specs"][0]["metrics"][1]
            versions[node.id] = json.loads("{" + metric["config"] + "}")[CODE_VERSION_KEY]
    # Every step except the stock ones (whose code comes with TFX's version) has one.
    assert set(versions) == COMPONENTS - {"StatisticsGen", "ImportSchemaGen", "ExampleValidator"}
    assert versions["CooccurrenceCandidates"] == code_version("components.cooccurrence.executor")
    # The run_fn and the executor that records how the model was started (warm start).
    assert versions["Trainer"] == code_version("trainer_module.run", "components.warm_start_trainer.executor")
    assert len(set(versions.values())) == len(versions), versions


def test_modules_split_out_of_a_step_stay_in_its_code_version():
    """The SessionExampleGen and run-report modules split along their seams are still loaded by the executors
    that run them, so editing any of them reruns those steps."""
    session_modules = ("session_settings", "input_files", "event_rows", "sessions_lib", "run_counts")
    for executor in ("session_example_gen", "coldstart", "board_cooccurrence"):
        closure = module_closure([f"components.{executor}.executor"])
        assert {f"components.session_example_gen.{name}" for name in session_modules} <= set(closure)
    report_modules = ("report_view", "report_html", "report_markdown", "svg_charts", "stability_report")
    closure = module_closure(["components.related_evaluator.executor"])
    assert {f"components.related_evaluator.{name}" for name in report_modules} <= set(closure)
