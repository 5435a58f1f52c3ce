#!/usr/bin/env bash
# The first thing to run: installs what kiln needs, builds it (CPU backend), compiles the
# PP-OCRv4 text detector that ships in the rapidocr_onnxruntime wheel into a kiln plan for
# a scanned page, and runs examples/text_detect on it. Writes out/page_text_detect.png
# (overlay), out/page_text_detect.json (boxes) and out/ppocr_det.kiln (the plan).
# KILN_BUILD_DIR picks another build directory (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${KILN_BUILD_DIR:-build}"

VENV="$(bash scripts/build.sh kiln text_detect | tail -n 1)"
PY="$VENV/bin/python"

# The trained detector and a real scanned page both come with the Python packages.
MODEL="$("$PY" -c 'import os, rapidocr_onnxruntime as r
print(os.path.join(os.path.dirname(r.__file__), "models", "ch_PP-OCRv4_det_infer.onnx"))')"
IMAGE="$("$PY" -c 'import os, skimage
print(os.path.join(os.path.dirname(skimage.__file__), "data", "page.png"))')"
INPUT="$("$PY" -c 'import onnx, sys; print(onnx.load(sys.argv[1]).graph.input[0].name)' "$MODEL")"

mkdir -p out
# The detector takes any H and W (multiples of 32); build the plan for this image's size.
SHAPE="$("$BUILD/text_detect" --print-shape "$IMAGE")"
echo "+ kiln build $(basename "$MODEL") --shapes $INPUT:$SHAPE -o out/ppocr_det.kiln"
"$BUILD/kiln" build "$MODEL" --shapes "$INPUT:$SHAPE" -o out/ppocr_det.kiln
echo "+ text_detect out/ppocr_det.kiln $(basename "$IMAGE")"
"$BUILD/text_detect" out/ppocr_det.kiln "$IMAGE" -o out/page_text_detect.png --json out/page_text_detect.json
