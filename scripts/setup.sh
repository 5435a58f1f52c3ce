#!/usr/bin/env bash
# Installs everything kiln needs on a fresh Debian 12 machine: build dependencies (Debian
# packages) and the Python packages used by tests and tools (in a venv shared between
# checkouts, so CI and a second clone do not download torch again).
# Idempotent and quiet when already done. Prints the venv path on the last line.
set -euo pipefail

APT_PKGS=(cmake ninja-build g++ pkg-config protobuf-compiler libprotobuf-dev flatbuffers-compiler
  libflatbuffers-dev libopenblas-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libstb-dev libxxhash-dev libzip-dev pybind11-dev python3-venv)
PY_PKGS=(numpy onnx onnxruntime torch torchvision transformers rapidocr-onnxruntime
  scikit-image pillow pytest nvidia-cudnn-frontend)

KILN_VENV="${KILN_VENV:-$HOME/.local/share/kiln/venv}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# python3 on PATH may be a pyenv build; any 3.10+ with venv works.
PY="${KILN_PYTHON:-python3}"
if [ ! -x "$KILN_VENV/bin/python" ]; then
  echo "setup: creating venv $KILN_VENV" >&2
  mkdir -p "$(dirname "$KILN_VENV")"
  "$PY" -m venv "$KILN_VENV"
fi
stamp="$KILN_VENV/.kiln-setup-$(echo "${PY_PKGS[*]}" | md5sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages (first run downloads torch; several minutes)" >&2
  "$KILN_VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$KILN_VENV/bin/python" -m pip install -q "${PY_PKGS[@]}"
  touch "$stamp"
fi
echo "$KILN_VENV"
