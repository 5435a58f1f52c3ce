#!/usr/bin/env bash
# Bundles kiln for the lent GPU machine (see ../shared/DEVICE.md): builds Release for
# sm_90a, copies the binaries to dist/bin and every shared library they need that is not
# part of glibc/libstdc++ or the CUDA toolkit to dist/lib, and points the binaries'
# RPATH at $ORIGIN/../lib. The machine there has none of protobuf, OpenBLAS, fmt, ...
# Usage: scripts/device-bundle.sh   (then carry "dist.tar.gz" with the device tool's run)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${KILN_DEVICE_BUILD_DIR:-build-device}"
VENV="$(bash scripts/setup.sh | tail -n1)"
command -v patchelf >/dev/null || { apt-get install -y -qq patchelf >/dev/null; }
LAUNCHER=()
command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
# RPATH set at link time ($ORIGIN/../lib in dist/bin; $ORIGIN/.. finds libkiln in the build
# tree, where gtest discovery runs the tests): patchelf on stripped executables has corrupted
# their dynamic symbol tables here, so only the copied libraries are patched.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DKILN_SHARED_LIB=ON \
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN/../lib;$ORIGIN/..' \
  -DKILN_PYTHON="$VENV/bin/python" "${LAUNCHER[@]}" >/dev/null
ninja -C "$BUILD" -j"$(nproc)" >&2

BINS=("$BUILD/kiln" "$BUILD/text_detect" "$BUILD/shape_switch" "$BUILD/tests/kiln_unit_tests" "$BUILD/tests/kiln_conformance")
[ -x "$BUILD/tests/kiln_gpu_tests" ] && BINS+=("$BUILD/tests/kiln_gpu_tests")
rm -rf dist && mkdir -p dist/bin dist/lib dist/tests
# Present on any glibc-based Linux with a C++ runtime, or provided by the CUDA driver/toolkit.
SYSTEM='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libgcc_s|libz\.|libcuda|libcudart|libcublas|libcublasLt|libcudnn|libnvrtc|libnvJitLink)'
for b in "${BINS[@]}"; do
  cp "$b" dist/bin/
  ldd "$b" | awk '$3 ~ /^\// {print $1, $3}' | while read -r name path; do
    [[ "$name" =~ $SYSTEM ]] && continue
    [ -e "dist/lib/$name" ] || cp -L "$path" "dist/lib/$name"
  done
done
for f in dist/lib/*; do patchelf --set-rpath '$ORIGIN' "$f"; done
# Symbol tables are not needed to run; the carry limit is 64 MiB.
strip --strip-unneeded dist/bin/* dist/lib/*
# Every binary must start with only the bundle on its library path.
for f in dist/bin/*; do
  LD_LIBRARY_PATH= "$f" --help >/dev/null 2>&1 || { echo "device-bundle: $f does not start" >&2; exit 1; }
done
# Test data and scripts the GPU suite needs (the checkout travels; build outputs do not).
cp tests/conformance/expected_pass.txt dist/tests/
du -sh dist | awk '{print "dist: " $1}' >&2
# The device tool carries at most 64 MiB; with CUDA kernels and OpenBLAS dist is larger,
# so it travels compressed and scripts/device-run.sh unpacks it there.
tar czf dist.tar.gz dist
du -sh dist.tar.gz | awk '{print "dist.tar.gz (carry this): " $1}' >&2
