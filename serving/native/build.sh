#!/usr/bin/env bash
# Builds serving/native/grpc_frontend.cc into the extension module serving._grpc_frontend, the C++ gRPC
# transport of `pin2vec serve` (docs/SERVING.md). Needs a C++17 compiler, Python's headers and grpc++'s; on
# Debian/Ubuntu it installs libgrpc++-dev when missing (scripts/ensure_grpcpp.sh, as root or through sudo).
# Usage: build.sh PYTHON
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${1:?usage: build.sh PYTHON}
src=serving/native/grpc_frontend.cc
out=serving/_grpc_frontend$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
if [[ -f $out && $out -nt $src && $out -nt $0 ]]; then exit 0; fi
scripts/ensure_grpcpp.sh grpc_frontend
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -Wall -shared -fPIC -fvisibility=hidden -I"$include" -o "$out.tmp" "$src" \
  $(pkg-config --cflags --libs grpc++)
mv "$out.tmp" "$out"
echo "grpc_frontend: built $out" >&2
