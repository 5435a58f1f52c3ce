#!/usr/bin/env bash
# Runs on the lent GPU machine, over dist/ from scripts/device-bundle.sh (carry
# "dist.tar.gz", unpacked here): the GPU suite and the
# benchmark, writing logs and JSON to $OUT. One device call may last 10 minutes, so the
# work comes in groups; give several.
# Usage: scripts/device-run.sh GROUP...   (default: kernels conformance models memcheck)
#   kernels:     kiln_gpu_tests, one process per suite (a crash names its suite and test)
#   conformance: ONNX backend cases through the CUDA backend (bar: 95% of the CPU's list)
#   models:      real models vs ONNX Runtime, FP32 (TF32 off, 1e-4) and FP16 (1e-2)
#   models_fp16: the FP16 half of that
#   memcheck:    compute-sanitizer memcheck over all of kiln_gpu_tests
#   unit:        the CPU unit tests
#   bench:       bench/run_bench.py (kiln vs PyTorch eager, same GPU, same run);
#                KILN_BENCH_ARGS adds arguments (e.g. "--models resnet50 --compile")
set -uo pipefail
cd "$(dirname "$0")/.."
GROUPS_=("$@")
[ ${#GROUPS_[@]} -eq 0 ] && GROUPS_=(kernels conformance models memcheck)
# A fresh bundle replaces what an earlier call left on the (warm) machine.
if [ -f dist.tar.gz ]; then rm -rf dist && tar xzf dist.tar.gz; fi
OUT="${OUT:-out/device}"
mkdir -p "$OUT"
PY="${KILN_DEVICE_PYTHON:-python3}"
# Run against the cuDNN/cuBLAS kiln was compiled with (DEVICE.md).
NV=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$NV/cudnn/lib:$NV/cu13/lib:${LD_LIBRARY_PATH:-}"
status=0
last_rc=0
step() {  # step NAME TIMEOUT CMD...: runs CMD, logs to $OUT/NAME.log, prints a one-line result
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && status=1
  last_rc=$rc
  printf '%-16s rc=%d %4ds  %s\n' "$name" "$rc" $((SECONDS - t0)) "$(tail -n1 "$OUT/$name.log")"
}
models() {  # models NAME TOL BUILD_ARGS...
  local name="$1" tol="$2"; shift 2
  # Builds autotune every layer (LR-ASPP alone takes about a minute): a generous limit.
  step "$name" 450 env KILN_BIN="$PWD/dist/bin/kiln" KILN_CACHE=/tmp/kiln-cache KILN_BUILD_ARGS="$*" \
    KILN_REL_L2_TOL="$tol" "$PY" -m pytest -q -s -p no:cacheprovider tests/models/test_models.py -k "not ppocr"
}
kernels() {
  # One process per suite, so a crash names its suite; a crashed suite is re-run test by
  # test (and under gdb where there is one) to name the test and the host frame.
  local GT=dist/bin/kiln_gpu_tests suite t
  for suite in $("$GT" --gtest_list_tests | grep '^[A-Za-z].*\.$' | tr -d .); do
    step "gt_$suite" 200 "$GT" --gtest_brief=1 --gtest_filter="$suite.*"
    if [ "$last_rc" -gt 128 ]; then
      for t in $("$GT" --gtest_list_tests --gtest_filter="$suite.*" | grep '^ ' | tr -d ' '); do
        timeout 120 "$GT" --gtest_filter="$suite.$t" > "$OUT/gt_$suite.$t.log" 2>&1
        echo "  $suite.$t rc=$?"
      done
      command -v gdb >/dev/null && timeout 200 gdb -batch -ex run -ex bt --args "$GT" \
        --gtest_filter="$suite.*" > "$OUT/gdb_$suite.log" 2>&1
    fi
  done
}
step gpu 30 nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv
step ldd 30 bash -c '! ldd dist/bin/* | grep "not found"'
for g in "${GROUPS_[@]}"; do
  case "$g" in
    kernels) kernels ;;
    conformance)
      step onnx_data 120 "$PY" tests/conformance/generate_data.py /tmp/kiln-onnx-data
      step conformance_cuda 300 dist/bin/kiln_conformance --data /tmp/kiln-onnx-data --backend cuda \
        --expected dist/tests/expected_pass.txt --min-expected-fraction 0.95 ;;
    models)
      models models_fp32 1e-4 --backend cuda --no-tf32
      models models_fp16 1e-2 --backend cuda --fp16 ;;
    models_fp16) models models_fp16 1e-2 --backend cuda --fp16 ;;
    memcheck)
      step memcheck 500 compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
        dist/bin/kiln_gpu_tests --gtest_brief=1 ;;
    unit) step unit 120 dist/bin/kiln_unit_tests --gtest_brief=1 ;;
    bench)
      # shellcheck disable=SC2086
      step bench 580 "$PY" bench/run_bench.py --kiln dist/bin/kiln --out "$OUT/bench" ${KILN_BENCH_ARGS:-} ;;
    *) echo "device-run: unknown group $g" >&2; status=1 ;;
  esac
done
exit $status
