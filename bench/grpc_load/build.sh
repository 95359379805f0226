#!/usr/bin/env bash
# Builds bench/grpc_load/grpc_load.cc into build/grpc_load (bench-serving's gRPC load generator).
# Needs a C++17 compiler and grpc++'s headers; on Debian/Ubuntu, installs libgrpc++-dev when missing
# (as root, or through sudo). Nothing else in the project needs them.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/grpc_load
src=bench/grpc_load/grpc_load.cc
if [[ -x $out && $out -nt $src ]]; then exit 0; fi
if ! pkg-config --exists grpc++ 2>/dev/null; then
  if command -v apt-get >/dev/null; then
    sudo_=""; [[ $(id -u) -eq 0 ]] || sudo_="sudo"
    echo "grpc_load: installing libgrpc++-dev (grpc++ headers) with apt-get" >&2
    $sudo_ apt-get install -y --no-install-recommends libgrpc++-dev pkg-config >&2 \
      || { $sudo_ apt-get update >&2 && $sudo_ apt-get install -y --no-install-recommends libgrpc++-dev pkg-config >&2; }
  else
    echo "grpc_load: grpc++ headers not found (pkg-config grpc++); install your system's grpc++ development package" >&2
    exit 1
  fi
fi
mkdir -p build
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -Wall -o "$out.tmp" "$src" $(pkg-config --cflags --libs grpc++)
mv "$out.tmp" "$out"
echo "grpc_load: built $out" >&2
