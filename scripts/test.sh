#!/usr/bin/env bash
# Sets up a fresh machine, builds kiln and runs every test through ctest: unit tests, ONNX
# backend conformance on the CPU backend, CLI tests, and real models against ONNX Runtime.
# Usage: scripts/test.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
ctest --test-dir "${KILN_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
