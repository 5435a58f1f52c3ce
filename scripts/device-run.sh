#!/usr/bin/env bash
# Runs on the lent GPU machine, over dist/ from scripts/device-bundle.sh (carry "dist"):
# the GPU suite and the benchmark, writing logs and JSON to $OUT.
# Usage: scripts/device-run.sh [tests|bench|all] [quick]
#   tests: GPU kernel/runtime tests, compute-sanitizer memcheck on them, ONNX conformance
#          through the CUDA backend (bar: 95% of the CPU's passing list), real models vs
#          ONNX Runtime in FP32 (TF32 off) and FP16, and the CPU unit tests.
#   bench: bench/run_bench.py (kiln vs PyTorch eager, same GPU, same run).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-all}"
OUT="${OUT:-out/device}"
mkdir -p "$OUT"
PY="${KILN_DEVICE_PYTHON:-python3}"
# Run against the cuDNN/cuBLAS kiln was compiled with (DEVICE.md).
NV=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$NV/cudnn/lib:$NV/cu13/lib:${LD_LIBRARY_PATH:-}"
status=0
step() {  # step NAME TIMEOUT CMD...: runs CMD, logs to $OUT/NAME.log, prints a one-line result
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && status=1
  printf '%-16s rc=%d %4ds  %s\n' "$name" "$rc" $((SECONDS - t0)) "$(tail -n1 "$OUT/$name.log")"
}
models() {  # models NAME TOL BUILD_ARGS...
  local name="$1" tol="$2"; shift 2
  step "$name" 130 env KILN_BIN="$PWD/dist/bin/kiln" KILN_CACHE=/tmp/kiln-cache KILN_BUILD_ARGS="$*" \
    KILN_REL_L2_TOL="$tol" "$PY" -m pytest -q -s -p no:cacheprovider tests/models/test_models.py -k "not ppocr"
}
if [ "$MODE" = tests ] || [ "$MODE" = all ]; then
  step gpu 30 nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
  step ldd 30 bash -c '! ldd dist/bin/* | grep "not found"'
  step gpu_tests 100 dist/bin/kiln_gpu_tests --gtest_brief=1
  step onnx_data 120 "$PY" tests/conformance/generate_data.py /tmp/kiln-onnx-data
  step conformance_cuda 200 dist/bin/kiln_conformance --data /tmp/kiln-onnx-data --backend cuda \
    --expected dist/tests/expected_pass.txt --min-expected-fraction 0.95
  models models_fp32 1e-4 --backend cuda --no-tf32
  models models_fp16 1e-2 --backend cuda --fp16
  if [ "${2:-}" != quick ]; then
    step memcheck 400 compute-sanitizer --tool memcheck --error-exitcode 9 \
      dist/bin/kiln_gpu_tests --gtest_brief=1 --gtest_filter='CudaRuntime.*:*Pointwise*:*Reduce*:*Gemm*:*Conv*'
    step unit 120 dist/bin/kiln_unit_tests --gtest_brief=1
  fi
fi
if [ "$MODE" = bench ] || [ "$MODE" = all ]; then
  step bench 540 "$PY" bench/run_bench.py --kiln dist/bin/kiln --out "$OUT/bench"
fi
exit $status
