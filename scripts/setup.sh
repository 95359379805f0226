#!/usr/bin/env bash
# Creates .venv from the committed lock file; idempotent (re-running with an unchanged lock does nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/requirements.lock
PY=${PYTHON:-python3}
STAMP=.venv/.lock.sha256

# The C++ gRPC transport of `pin2vec serve` (skips itself when up to date); without it the server falls back
# to grpc.aio, so a failed build is reported, not fatal.
build_grpc_frontend() {
  serving/native/build.sh .venv/bin/python \
    || echo "[setup] WARNING: the C++ gRPC transport was not built (see above); pin2vec serve will use grpc.aio" >&2
}

want=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  build_grpc_frontend
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
build_grpc_frontend
echo "[setup] .venv ready"
