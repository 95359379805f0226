#!/usr/bin/env bash
# Re-resolves requirements/requirements.lock from requirements/requirements.in (run after changing the .in).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
python3 -m uv pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
  --override requirements/overrides.txt -o requirements/requirements.lock requirements/requirements.in
