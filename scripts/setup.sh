#!/usr/bin/env bash
# Creates .venv from the committed lock file; idempotent (re-running with an unchanged lock does nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/requirements.lock
PY=${PYTHON:-python3}
STAMP=.venv/.lock.sha256

want=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "[setup] creating .venv from $LOCK (first time: a few minutes)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! .venv/bin/python -m uv --version >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$(grep -E '^uv==' "$LOCK")"
fi
# TFX 1.16 declares Requires-Python <3.11 but runs on 3.11: install the resolved lock exactly, without
# letting the installer re-resolve (see docs/STACK.md).
.venv/bin/python -m uv pip install --python .venv/bin/python --no-deps -r "$LOCK"
.venv/bin/python -m uv pip install --python .venv/bin/python --no-deps -e .
echo "$want" > "$STAMP"
echo "[setup] .venv ready"
