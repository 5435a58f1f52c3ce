"""Dynamic plans of real models through the kiln CLI, compared with ONNX Runtime.

For each model of export_models.DYNAMIC_MODELS: ONE plan is built with its optimisation
profile (`kiln build --min-shapes/--opt-shapes/--max-shapes`), then `kiln run` runs that plan
at each input shape of the model's cases and every output is compared with ONNX Runtime on
the same input, with the bar of test_models.py (rel L2 < 1e-4 in f32, KILN_REL_L2_TOL).

    KILN_BIN=build/kiln pytest tests/models -m dynamic -s      # all of them
    KILN_BIN=build/kiln pytest tests/models -m resnet50 -s     # the static and dynamic ResNet-50
"""
import time

import numpy as np
import onnxruntime as ort
import pytest

import export_models
from export_models import DYNAMIC_MODELS
from test_models import BUILD_ARGS, compare_outputs, kiln_bin, run_cmd  # noqa: F401 (fixture)

CASES = [pytest.param(name, case, id=f"{name}-{case}",
                      marks=[pytest.mark.dynamic, getattr(pytest.mark, spec.base)])
         for name, spec in DYNAMIC_MODELS.items() for case in spec.cases]

_sessions = {}


def session(model):
    if model not in _sessions:
        _sessions[model] = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return _sessions[model]


@pytest.fixture(scope="session")
def dynamic_plan(kiln_bin, tmp_path_factory):
    """name -> (model path, plan path, times): exported and built on first use, then reused
    by every case of the model (times are reported with the first case only)."""
    plans = {}

    def get(name):
        if name in plans:
            model, plan, _ = plans[name]
            return model, plan, {}
        spec = DYNAMIC_MODELS[name]
        t = time.perf_counter()
        model = export_models.model_path(name)
        times = {"export": (time.perf_counter() - t) * 1e3}
        plan = tmp_path_factory.mktemp(name) / f"{name}.kiln"
        build = [kiln_bin, "build", str(model), "-o", str(plan), "--min-shapes", spec.min_shapes,
                 "--opt-shapes", spec.opt_shapes, "--max-shapes", spec.max_shapes] + BUILD_ARGS
        times["kiln build"] = run_cmd(build, "kiln build")
        plans[name] = (model, plan, times)
        return model, plan, times

    return get


@pytest.mark.parametrize("name,case", CASES)
def test_dynamic_plan_matches_onnxruntime(name, case, kiln_bin, dynamic_plan, tmp_path,
                                          record_property):
    spec = DYNAMIC_MODELS[name]
    model, plan, times = dynamic_plan(name)
    record_property("model", f"{spec.base} dyn {case}")
    record_property("times_ms", times)

    feeds = spec.cases[case]()
    sess = session(model)
    t = time.perf_counter()
    ref = sess.run(None, feeds)
    times["ort"] = (time.perf_counter() - t) * 1e3
    out_names = [o.name for o in sess.get_outputs()]

    out_npz = tmp_path / "out.npz"
    run = [kiln_bin, "run", str(plan), "--output-npz", str(out_npz)]
    for k, v in feeds.items():
        np.save(tmp_path / f"{k}.npy", v)
        run += ["--input", f"{k}={tmp_path / f'{k}.npy'}"]
    times["kiln run"] = run_cmd(run, "kiln run")
    shapes = ", ".join(f"{k} {'x'.join(map(str, v.shape))}" for k, v in feeds.items())
    print(f"\n{name} at {shapes}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in times.items()))

    results, failures = compare_outputs(out_names, ref, np.load(out_npz), out_npz.name)
    record_property("outputs", results)
    assert not failures, f"{name} {case}: " + "; ".join(failures)
