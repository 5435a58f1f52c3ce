"""Real models through the kiln CLI compared with ONNX Runtime on the same seeded input.

For each model of export_models.MODELS: ONNX Runtime (CPUExecutionProvider) gives the
reference; `kiln build` + `kiln run` give the candidate; every output must match in shape and
have a relative L2 error ||kiln - ort|| / ||ort|| below 1e-4 (f32 end to end, so only
summation order differs). The max abs error is reported alongside.

    KILN_BIN=build/kiln pytest tests/models -m resnet50 -s

On a GPU machine KILN_BUILD_ARGS selects the CUDA backend, e.g. "--backend cuda --no-tf32"
(bar: rel L2 < 1e-4) or "--backend cuda --fp16" (bar: rel L2 < 1e-2, KILN_REL_L2_TOL).
"""
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import export_models

KILN_BIN = os.environ.get("KILN_BIN", "/work/main/build-models/kiln")
BUILD_ARGS = os.environ.get("KILN_BUILD_ARGS", "").split()
REL_L2_TOL = float(os.environ.get("KILN_REL_L2_TOL", "1e-4"))
#: Generous per-command limit: a hang must fail the test, not the whole CI job.
CMD_TIMEOUT_S = 600


def run_cmd(args, what):
    t = time.perf_counter()
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} timed out after {CMD_TIMEOUT_S} s: {' '.join(map(str, args))}")
    ms = (time.perf_counter() - t) * 1e3
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-30:])
        pytest.fail(f"{what} failed (exit {p.returncode}): {' '.join(map(str, args))}\n{tail}")
    return ms


def compare_outputs(out_names, ref, outputs, archive_name):
    """kiln's outputs (an npz archive, loaded) against ONNX Runtime's `ref` (in `out_names`
    order): same shape and dtype, finite, rel L2 below REL_L2_TOL. Returns the
    (name, rel L2, max abs) rows for the summary and the failures as messages."""
    results, failures = [], []
    for oname, expect in zip(out_names, ref):
        if oname not in outputs.files:
            failures.append(f"output '{oname}': not in kiln's {archive_name}")
            results.append((oname, None, None))
            continue
        got = outputs[oname]
        if got.shape != expect.shape:
            failures.append(f"output '{oname}': shape {got.shape}, expected {expect.shape}")
            results.append((oname, None, None))
            continue
        diff = got.astype(np.float64) - expect.astype(np.float64)
        norm = np.linalg.norm(expect.astype(np.float64))
        rel = float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff))
        max_abs = float(np.abs(diff).max()) if diff.size else 0.0
        results.append((oname, rel, max_abs))
        print(f"  {oname}: rel L2 {rel:.3e}, max abs {max_abs:.3e}, dtype {got.dtype} "
              f"[{' '.join(BUILD_ARGS) or 'cpu'}]")
        if got.dtype != expect.dtype:
            failures.append(f"output '{oname}': dtype {got.dtype}, expected {expect.dtype}")
        if not np.isfinite(got).all() or not rel < REL_L2_TOL:
            failures.append(f"output '{oname}': rel L2 {rel:.3e} (tolerance {REL_L2_TOL:g}), "
                            f"max abs {max_abs:.3e}")
    return results, failures


@pytest.fixture(scope="session")
def kiln_bin():
    if not (os.path.isfile(KILN_BIN) and os.access(KILN_BIN, os.X_OK)):
        pytest.fail(f"kiln CLI not found at {KILN_BIN}; build it (ninja kiln) or set KILN_BIN")
    return KILN_BIN


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=getattr(pytest.mark, n)) for n in export_models.MODELS])
def test_model_matches_onnxruntime(name, kiln_bin, tmp_path, record_property):
    times = {}
    record_property("model", name)
    record_property("times_ms", times)

    t = time.perf_counter()
    model = export_models.model_path(name)
    inputs = export_models.input_files(name)
    times["export"] = (time.perf_counter() - t) * 1e3

    feeds = {k: np.load(p) for k, p in inputs.items()}
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    t = time.perf_counter()
    ref = sess.run(None, feeds)
    times["ort"] = (time.perf_counter() - t) * 1e3
    out_names = [o.name for o in sess.get_outputs()]

    plan = tmp_path / f"{name}.kiln"
    build = [kiln_bin, "build", str(model), "-o", str(plan)] + BUILD_ARGS
    if export_models.MODELS[name].shapes:
        build += ["--shapes", export_models.MODELS[name].shapes]
    times["kiln build"] = run_cmd(build, "kiln build")

    # One archive keyed by the real output names: no file-name sanitising to mirror here.
    out_npz = tmp_path / "out.npz"
    run = [kiln_bin, "run", str(plan), "--output-npz", str(out_npz)]
    for k, p in inputs.items():
        run += ["--input", f"{k}={p}"]
    times["kiln run"] = run_cmd(run, "kiln run")
    print(f"\n{name}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in times.items()))

    results, failures = compare_outputs(out_names, ref, np.load(out_npz), out_npz.name)
    record_property("outputs", results)
    assert not failures, f"{name}: " + "; ".join(failures)
