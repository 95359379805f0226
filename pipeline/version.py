"""`pin2vec --version`: the installed package's version, and the git commit of the source tree when it is a
checkout (a run's code is its modules, so the commit says which code a report or a bug came from)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess

PACKAGE = "pin2vec"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_version() -> str:
    """From the installed distribution; from pyproject.toml when the tree runs uninstalled (PYTHONPATH)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        with open(os.path.join(_ROOT, "pyproject.toml"), encoding="utf-8") as f:
            found = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.MULTILINE)
        return found.group(1) if found else "unknown"
    except OSError:
        return "unknown"


def git_commit(root: str = _ROOT) -> str | None:
    """The short commit of the checkout the code runs from, "+dirty" when it has uncommitted changes; None
    outside a git checkout or without git."""
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", "-C", root, *a], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        commit = run("rev-parse", "--short=12", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def version_text() -> str:
    commit = git_commit()
    return f"pin2vec {package_version()}" + (f" (commit {commit})" if commit else "")
