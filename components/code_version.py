"""A fingerprint of the project code a pipeline step runs, for TFX's cache key.

TFX reuses a step's earlier outputs when its inputs and exec properties are unchanged; it never looks at
the code behind a dotted executor or `run_fn` path. Without this, a fixed co-occurrence scorer or trainer
would keep serving outputs of the old code on every rerun. Each step carries the hash of the project
modules it imports (transitively), so a code change reruns exactly the steps whose code changed.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

# The top-level packages this project ships (pyproject's [tool.setuptools.packages.find]).
PROJECT_PACKAGES = (
    "components",
    "engagement_data",
    "formats",
    "pin2vec",
    "pipeline",
    "serving",
    "trainer_module",
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CODE_VERSION_KEY = "code_version"


def module_file(root: Path, module: str) -> Path | None:
    """The source file of a dotted module below `root`, or None when it is not a module there."""
    path = root.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every module an import statement in `source` may load, with the packages whose __init__ runs."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                package = parts if is_package else parts[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            names.add(base)
            # `from a import b` loads module a.b when b is one; a plain name finds no file and is skipped.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names | _parent_packages(names)


def _parent_packages(modules: Iterable[str]) -> set[str]:
    """The packages whose __init__ runs before each module: a.b.c -> a, a.b."""
    return {".".join(name.split(".")[:i]) for name in modules for i in range(1, name.count(".") + 1)}


def module_closure(
    roots: Iterable[str], root: Path = PROJECT_ROOT, packages: Iterable[str] = PROJECT_PACKAGES
) -> dict[str, Path]:
    """The project modules that importing `roots` loads, by dotted name; third-party imports are left out."""
    packages = tuple(packages)
    found: dict[str, Path] = {}
    roots = tuple(roots)
    pending = [*roots, *_parent_packages(roots)]
    while pending:
        module = pending.pop()
        if module in found or module.split(".")[0] not in packages:
            continue
        path = module_file(root, module)
        if path is None:
            continue
        found[module] = path
        is_package = path.name == "__init__.py"
        pending.extend(_imported_modules(path.read_text(encoding="utf-8"), module, is_package))
    missing = [name for name in roots if name not in found]
    if missing:
        raise ValueError(f"code_version: no module {missing} under {root} (packages {packages})")
    return found


def code_version(*roots: str, root: Path = PROJECT_ROOT, packages: Iterable[str] = PROJECT_PACKAGES) -> str:
    """A short hash of the names and sources of every project module that importing `roots` loads."""
    digest = hashlib.sha256()
    for name, path in sorted(module_closure(roots, root, packages).items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def package_code_version(root: Path = PROJECT_ROOT, packages: Iterable[str] = PROJECT_PACKAGES) -> str:
    """A short hash of every project module's name and source: which code wrote a report, when the project is
    not a git checkout (an installed wheel, a container image)."""
    digest = hashlib.sha256()
    for package in sorted(packages):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def git_commit(root: Path = PROJECT_ROOT) -> tuple[str, bool] | None:
    """(HEAD's commit, whether tracked files differ from it) when `root` is itself a git checkout's top level;
    None otherwise (no git, or an installed package inside some other repository, whose commit says nothing
    about this code)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != Path(root).resolve():
            return None
        return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
