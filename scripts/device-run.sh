#!/usr/bin/env bash
# Runs on the lent GPU machine, over dist/ from scripts/device-bundle.sh (carry "dist"):
# checks the bundle resolves, then runs the unit tests, the ONNX conformance suite and the
# real-model comparison there, writing logs to $OUT. Issue 3 extends this into the GPU suite.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out/device}"
mkdir -p "$OUT"
PY="${KILN_DEVICE_PYTHON:-python3}"
status=0
step() {  # step NAME CMD...: runs CMD, logs to $OUT/NAME.log, prints a one-line result
  local name="$1"; shift
  local t0=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && status=1
  printf '%-14s rc=%d %4ds  %s\n' "$name" "$rc" $((SECONDS - t0)) "$(tail -n1 "$OUT/$name.log")"
}
step gpu nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
step ldd bash -c '! ldd dist/bin/kiln dist/bin/kiln_unit_tests | grep "not found"'
step unit dist/bin/kiln_unit_tests --gtest_brief=1
step onnx_data "$PY" tests/conformance/generate_data.py /tmp/kiln-onnx-data
step conformance dist/bin/kiln_conformance --data /tmp/kiln-onnx-data --expected dist/tests/expected_pass.txt
step models env KILN_BIN="$PWD/dist/bin/kiln" KILN_CACHE=/tmp/kiln-cache "$PY" -m pytest -q -p no:cacheprovider \
  tests/models/test_models.py -k "not ppocr"
exit $status
