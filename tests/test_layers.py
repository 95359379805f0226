"""The layers of docs/ARCHITECTURE.md, read from the code: imports point down, never up or sideways.

Every import statement counts, including those inside functions, since those load the module too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from components.code_version import PROJECT_PACKAGES, module_closure

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("bench", *PROJECT_PACKAGES)  # the shipped packages and the benches
# Each package and the project packages it must never import.
FORBIDDEN = {
    "formats": {"bench", "components", "engagement_data", "pin2vec", "pipeline", "serving", "trainer_module"},
    "trainer_module": {"bench", "components", "engagement_data", "pin2vec", "pipeline", "serving"},
    "engagement_data": {"bench", "components", "pin2vec", "pipeline", "serving", "trainer_module"},
    "components": {"bench", "pin2vec", "pipeline", "serving"},
    "serving": {"bench", "components", "pin2vec", "pipeline"},
    "pipeline": {"bench", "pin2vec"},
    # The artifact types by their type names, for TFX's Kubeflow entrypoint only (pin2vec/__init__.py).
    "pin2vec": {"bench", "engagement_data", "pipeline", "serving"},
}
# formats/ is read by servers and tools that must not pay for (or install) these.
HEAVY = ("tensorflow", "tensorflow_transform", "tf_keras", "tfx")


def imported_top_levels(path: Path) -> dict[str, int]:
    """{top-level module: first line importing it}; relative imports stay inside their own package."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            found.setdefault(name.split(".")[0], node.lineno)
    return found


def violations(package: str, banned: set[str] | tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, line in imported_top_levels(path).items()
        if name in banned
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_downward(package):
    assert violations(package, FORBIDDEN[package]) == []


def test_formats_import_neither_tensorflow_nor_tfx():
    assert violations("formats", HEAVY) == []


def test_the_rule_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "module.py"
    source.write_text("import os\n\ndef f():\n    from serving import server\n    import tfx.types\n")
    assert imported_top_levels(source) == {"os": 1, "serving": 4, "tfx": 5}


def test_every_project_package_is_given_a_rule():
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages - {"tests"} <= set(PROJECT)
    assert set(FORBIDDEN) | {"bench"} == set(PROJECT) & packages | {"bench"}


def test_the_related_evaluators_code_version_covers_no_data_fetcher_or_server():
    closure = module_closure(["components.related_evaluator.executor"])
    assert not [name for name in closure if name.split(".")[0] in ("engagement_data", "serving", "pipeline")]
    assert "formats.index_searcher" in closure
