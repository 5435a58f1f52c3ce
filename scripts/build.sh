#!/usr/bin/env bash
# Configures and builds kiln (Release) in ${KILN_BUILD_DIR:-build} after scripts/setup.sh.
# Used by scripts/demo.sh and scripts/test.sh so both share one build configuration.
# Usage: scripts/build.sh [ninja targets]   Prints the venv path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(bash scripts/setup.sh | tail -n1)"
BUILD="${KILN_BUILD_DIR:-build}"
LAUNCHER=()
command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_PYTHON="$VENV/bin/python" \
  "${LAUNCHER[@]}" >/dev/null
ninja -C "$BUILD" -j"$(nproc)" "$@" >&2
echo "$VENV"
