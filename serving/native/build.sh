#!/usr/bin/env bash
# Builds serving/native/grpc_frontend.cc into the extension module serving._grpc_frontend, the C++ gRPC
# transport of `pin2vec serve` (docs/SERVING.md). Needs a C++17 compiler, Python's headers and grpc++'s; on
# Debian/Ubuntu it installs libgrpc++-dev when missing (as root, or through sudo). Usage: build.sh PYTHON
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${1:?usage: build.sh PYTHON}
src=serving/native/grpc_frontend.cc
out=serving/_grpc_frontend$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
if [[ -f $out && $out -nt $src && $out -nt $0 ]]; then exit 0; fi
if ! pkg-config --exists grpc++ 2>/dev/null; then
  if command -v apt-get >/dev/null; then
    sudo_=""; [[ $(id -u) -eq 0 ]] || sudo_="sudo"
    echo "grpc_frontend: installing libgrpc++-dev (grpc++ headers) with apt-get" >&2
    $sudo_ apt-get install -y --no-install-recommends libgrpc++-dev pkg-config >&2 \
      || { $sudo_ apt-get update >&2 && $sudo_ apt-get install -y --no-install-recommends libgrpc++-dev pkg-config >&2; }
  else
    echo "grpc_frontend: grpc++ headers not found (pkg-config grpc++); install your system's grpc++ development" \
      "package, or serve with --grpc-frontend python" >&2
    exit 1
  fi
fi
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -Wall -shared -fPIC -fvisibility=hidden -I"$include" -o "$out.tmp" "$src" \
  $(pkg-config --cflags --libs grpc++)
mv "$out.tmp" "$out"
echo "grpc_frontend: built $out" >&2
