#!/usr/bin/env bash
# Builds bench/grpc_load/grpc_load.cc into build/grpc_load (bench-serving's gRPC load generator).
# Needs a C++17 compiler and grpc++'s headers; on Debian/Ubuntu, installs libgrpc++-dev when missing
# (scripts/ensure_grpcpp.sh, as root or through sudo).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/grpc_load
src=bench/grpc_load/grpc_load.cc
if [[ -x $out && $out -nt $src ]]; then exit 0; fi
scripts/ensure_grpcpp.sh grpc_load
mkdir -p build
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -Wall -o "$out.tmp" "$src" $(pkg-config --cflags --libs grpc++)
mv "$out.tmp" "$out"
echo "grpc_load: built $out" >&2
