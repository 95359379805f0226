#!/usr/bin/env bash
# Makes grpc++'s headers available (pkg-config grpc++): on Debian/Ubuntu, installs libgrpc++-dev with apt-get
# when they are missing (as root, or through sudo). Used by the builds of the C++ gRPC transport
# (serving/native) and the gRPC load generator (bench/grpc_load). Usage: ensure_grpcpp.sh WHO (names the caller
# in messages)
set -euo pipefail
who=${1:-grpc++}
if pkg-config --exists grpc++ 2>/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "$who: grpc++ headers not found (pkg-config grpc++); install your system's grpc++ development package" >&2
  exit 1
fi
sudo_=""; [[ $(id -u) -eq 0 ]] || sudo_="sudo"
echo "$who: installing libgrpc++-dev (grpc++ headers) with apt-get" >&2
$sudo_ apt-get install -y --no-install-recommends libgrpc++-dev pkg-config >&2 \
  || { $sudo_ apt-get update >&2 && $sudo_ apt-get install -y --no-install-recommends libgrpc++-dev pkg-config >&2; }
