"""docs/ARCHITECTURE.md's module map names every module of the package, and only modules that exist."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "components", "trainer_module", "formats", "serving", "engagement_data")


def _modules() -> set[str]:
    return {
        path.relative_to(REPO).as_posix()
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if path.name != "__init__.py"
    }


def _mapped() -> set[str]:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("## Module map") :]
    return set(re.findall(r"^\| `([^`]+\.py)` \|", section, flags=re.MULTILINE))


def test_every_module_is_in_the_module_map():
    missing = sorted(_modules() - _mapped())
    assert not missing, f"add these to docs/ARCHITECTURE.md's module map: {missing}"


def test_the_module_map_names_only_modules_that_exist():
    gone = sorted(_mapped() - _modules())
    assert not gone, f"docs/ARCHITECTURE.md's module map names modules that do not exist: {gone}"
