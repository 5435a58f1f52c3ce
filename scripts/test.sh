#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh), builds kiln and runs every test through
# ctest: unit tests, ONNX backend conformance on the CPU backend, CLI tests, and real
# models against ONNX Runtime. Usage: scripts/test.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(bash scripts/setup.sh | tail -n1)"
BUILD="${KILN_BUILD_DIR:-build}"
LAUNCHER=()
command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_PYTHON="$VENV/bin/python" "${LAUNCHER[@]}" >/dev/null
ninja -C "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" "$@"
