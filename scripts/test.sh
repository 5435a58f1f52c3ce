#!/usr/bin/env bash
# Sets up a fresh machine, builds kiln and runs every test through ctest: unit tests, ONNX
# backend conformance on the CPU backend, CLI tests, and real models against ONNX Runtime.
# On a machine with an NVIDIA GPU it also runs the GPU suite (ctest label gpu: kernel
# tests and conformance through the CUDA backend); without one that label is skipped.
# Usage: scripts/test.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
gpu_args=()
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "test: no GPU here: skipping the gpu label" >&2
  gpu_args=(-LE gpu)
fi
ctest --test-dir "${KILN_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "${gpu_args[@]}" "$@"
