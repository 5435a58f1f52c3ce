"""Dynamic plans through the `kiln` CLI: --min-shapes / --opt-shapes / --max-shapes on build,
run, bench and inspect; runs at several shapes from one plan; the errors a user meets (a
shape outside the profile, flags that do not fit the model or each other).

Helpers and exit codes come from test_cli.py (same directory; split off to keep files small).
"""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from test_cli import (EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, bench_json, errors, kiln, make_model, vi,
                      write_png)

B4 = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
PROFILE = ["--min-shapes", "x:1x1x4", "--opt-shapes", "x:4x2x4", "--max-shapes", "x:8x3x4"]


def reshape_model():
    """y = Reshape(x + b, [N, -1]), x: f32[N, C, 4]; the target shape is computed from the
    tensor (Shape -> Gather -> Concat), so y's dims need the shape arithmetic at run time."""
    nodes = [
        helper.make_node("Add", ["x", "b"], ["t"], name="add0"),
        helper.make_node("Shape", ["t"], ["s"], name="shape0"),
        helper.make_node("Gather", ["s", "i0"], ["n"], name="gather0", axis=0),
        helper.make_node("Concat", ["n", "m1"], ["target"], name="concat0", axis=0),
        helper.make_node("Reshape", ["t", "target"], ["y"], name="reshape0"),
    ]
    inits = [numpy_helper.from_array(B4, "b"), numpy_helper.from_array(np.array([0], np.int64), "i0"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1")]
    return make_model(nodes, [vi("x", TensorProto.FLOAT, ["N", "C", 4])], [vi("y", TensorProto.FLOAT, None)],
                      inits)


@pytest.fixture
def dyn(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(reshape_model(), path)
    return path


@pytest.fixture
def dyn_plan(dyn, tmp_path):
    plan = tmp_path / "dyn.kiln"
    p = kiln("build", dyn, "-o", plan, *PROFILE)
    assert p.returncode == EXIT_OK, p.stderr
    return plan


def save_x(tmp_path, shape):
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    path = tmp_path / f"x_{'x'.join(map(str, shape))}.npy"
    np.save(path, x)
    return x, path


def test_dynamic_plan_runs_at_several_shapes(dyn_plan, tmp_path):
    for shape in [(2, 3, 4), (5, 1, 4), (8, 3, 4), (1, 1, 4)]:
        x, xp = save_x(tmp_path, shape)
        out = tmp_path / f"out{shape[0]}"
        p = kiln("run", dyn_plan, "--input", f"x={xp}", "--output-dir", out)
        assert p.returncode == EXIT_OK, (shape, p.stderr)
        assert f"input x: f32[{'x'.join(map(str, shape))}]" in p.stdout
        y = np.load(out / "y.npy")
        np.testing.assert_allclose(y, (x + B4).reshape(shape[0], -1), rtol=1e-6, err_msg=str(shape))
    # An npz archive gives the shape the same way.
    x, _ = save_x(tmp_path, (3, 2, 4))
    np.savez(tmp_path / "in.npz", x=x)
    p = kiln("run", dyn_plan, "--inputs", tmp_path / "in.npz", "--output-npz", tmp_path / "o.npz")
    assert p.returncode == EXIT_OK, p.stderr
    assert np.load(tmp_path / "o.npz")["y"].shape == (3, 8)


@pytest.mark.parametrize("shape,dim,value,lo,hi", [((9, 2, 4), 0, 9, 1, 8), ((2, 0, 4), 1, 0, 1, 3)])
def test_run_outside_profile(dyn_plan, tmp_path, shape, dim, value, lo, hi):
    _, xp = save_x(tmp_path, shape)
    p = kiln("run", dyn_plan, "--input", f"x={xp}")
    assert p.returncode == EXIT_RUNTIME, p.stderr
    assert errors(p) == ["KLN-E2006"], p.stderr
    assert (f"input 'x' dimension {dim} is {value}, outside the range [{lo}, {hi}] of optimisation "
            f"profile 0") in p.stderr
    assert "hint:" in p.stderr and ("--max-shapes" if value > hi else "--min-shapes") in p.stderr
    assert "inference:" not in p.stdout


def test_fixed_dim_of_dynamic_plan(dyn_plan, tmp_path):
    _, xp = save_x(tmp_path, (2, 2, 5))
    p = kiln("run", dyn_plan, "--input", f"x={xp}")
    assert p.returncode == EXIT_RUNTIME and errors(p) == ["KLN-E2005"], p.stderr


def test_inspect_shows_profiles(dyn_plan, tmp_path):
    p = kiln("inspect", dyn_plan)
    assert p.returncode == EXIT_OK, p.stderr
    assert "optimisation profiles: 1" in p.stdout
    rows = [l.split() for l in p.stdout.splitlines()]
    assert ["profile", "input", "min", "opt", "max"] in rows
    assert ["0", "x", "1x1x4", "4x2x4", "8x3x4"] in rows
    info = json.loads(kiln("inspect", dyn_plan, "--json").stdout)
    assert info["profiles"] == [{"index": 0, "inputs": {"x": {"min": [1, 1, 4], "opt": [4, 2, 4],
                                                              "max": [8, 3, 4]}}}]
    assert info["inputs"][0]["shape"] == ["N", "C", 4]
    assert json.loads(kiln("inspect", dyn_plan, "--json").stdout)["plan"]["build_info"][
        "optimization_profiles"] == 1
    # A static plan has none, and says nothing about them.
    static = tmp_path / "static.kiln"
    assert kiln("build", dyn_plan.with_suffix(".onnx"), "--shapes", "x:2x3x4", "-o", static).returncode == EXIT_OK
    assert json.loads(kiln("inspect", static, "--json").stdout)["profiles"] == []
    assert "optimisation profiles" not in kiln("inspect", static).stdout


def test_opt_shapes_default_to_max(dyn, tmp_path):
    plan = tmp_path / "noopt.kiln"
    p = kiln("build", dyn, "-o", plan, "--min-shapes", "x:1x1x4", "--max-shapes", "x:8x3x4")
    assert p.returncode == EXIT_OK, p.stderr
    r = json.loads(kiln("inspect", plan, "--json").stdout)["profiles"][0]["inputs"]["x"]
    assert r == {"min": [1, 1, 4], "opt": [8, 3, 4], "max": [8, 3, 4]}


def test_profile_fixing_every_dim_gives_a_static_plan(dyn, tmp_path):
    plan = tmp_path / "fixed.kiln"
    p = kiln("build", dyn, "-o", plan, "--min-shapes", "x:2x3x4", "--max-shapes", "x:2x3x4")
    assert p.returncode == EXIT_OK, p.stderr
    info = json.loads(kiln("inspect", plan, "--json").stdout)
    assert info["profiles"] == [] and info["inputs"][0]["shape"] == [2, 3, 4]


@pytest.mark.parametrize("args,code,err,says", [
    (["--shapes", "x:2x3x4", "--min-shapes", "x:1x1x4", "--max-shapes", "x:8x3x4"], EXIT_USAGE, "KLN-E0002",
     "--shapes and --min-shapes/--opt-shapes/--max-shapes exclude each other"),
    (["--min-shapes", "x:1x1x4"], EXIT_USAGE, "KLN-E0002", "--max-shapes is missing"),
    (["--opt-shapes", "x:1x1x4", "--max-shapes", "x:8x3x4"], EXIT_USAGE, "KLN-E0002", "--min-shapes is missing"),
    (["--min-shapes", "x:1x1x4", "--max-shapes", "y:8x3x4"], EXIT_USAGE, "KLN-E0002",
     "--min-shapes gives input 'x', --max-shapes does not"),
    (["--min-shapes", "x:1x1", "--max-shapes", "x:8x3x4"], EXIT_USAGE, "KLN-E2007", "input 'x' 2 dims"),
    (["--min-shapes", "x:1xq", "--max-shapes", "x:8x3x4"], EXIT_USAGE, "KLN-E0002", "--min-shapes entry 'x:1xq'"),
    (["--min-shapes", "x:1x1x4", "--max-shapes", "x:8x3x5"], EXIT_USAGE, "KLN-E2007",
     "input 'x' dimension 2 is fixed to 4 by the model"),
    (["--min-shapes", "x:4x1x4", "--opt-shapes", "x:2x1x4", "--max-shapes", "x:8x3x4"], EXIT_USAGE, "KLN-E2007",
     "input 'x' dimension 0 has min 4, opt 2, max 8"),
    (["--min-shapes", "x:1x1x4,z:1", "--max-shapes", "x:8x3x4,z:2"], EXIT_USAGE, "KLN-E2007",
     "names input 'z', which the model does not have"),
])
def test_profile_option_errors(dyn, args, code, err, says):
    p = kiln("build", dyn, *args)
    assert p.returncode == code, p.stderr
    assert errors(p) == [err], p.stderr
    assert says in p.stderr
    assert not dyn.with_suffix(".kiln").exists()


@pytest.mark.parametrize("cmd", ["run", "bench", "inspect"])
def test_shapes_and_profile_exclude_each_other_everywhere(dyn, cmd):
    p = kiln(cmd, dyn, "--shapes", "x:2x3x4", "--min-shapes", "x:1x1x4", "--max-shapes", "x:8x3x4")
    if cmd == "bench":
        # bench builds with the profile and runs at --shapes: no conflict there.
        assert p.returncode == EXIT_OK, p.stderr
        assert "f32[2x3x4]" in p.stdout
    else:
        assert p.returncode == EXIT_USAGE and errors(p) == ["KLN-E0002"], p.stderr


def test_run_and_inspect_onnx_with_profile(dyn, tmp_path):
    _, xp = save_x(tmp_path, (9, 3, 4))
    p = kiln("run", dyn, "--input", f"x={xp}", *PROFILE)
    assert p.returncode == EXIT_RUNTIME and errors(p) == ["KLN-E2006"], p.stderr
    _, xp = save_x(tmp_path, (7, 3, 4))
    assert kiln("run", dyn, "--input", f"x={xp}", *PROFILE).returncode == EXIT_OK
    info = json.loads(kiln("inspect", dyn, "--json", *PROFILE).stdout)
    assert info["profiles"][0]["inputs"]["x"]["max"] == [8, 3, 4]


def test_profile_flags_on_a_plan_are_ignored(dyn_plan, tmp_path):
    _, xp = save_x(tmp_path, (8, 3, 4))
    p = kiln("run", dyn_plan, "--input", f"x={xp}", "--min-shapes", "x:1x1x4", "--max-shapes", "x:2x3x4")
    assert p.returncode == EXIT_OK, p.stderr
    assert "note: --min-shapes/--opt-shapes/--max-shapes are ignored" in p.stderr


def test_bench_dynamic_plan(dyn_plan):
    info, _ = bench_json(dyn_plan, "--iterations", "2", "--warmup-ms", "0")
    assert info["inputs"][0]["shape"] == [4, 2, 4]  # the profile's opt shape
    assert "opt shape of profile 0" in info["inputs"][0]["source"]
    assert info["config"]["batch"] == 4
    info, _ = bench_json(dyn_plan, "--iterations", "2", "--warmup-ms", "0", "--shapes", "x:7x1x4")
    assert info["inputs"][0]["shape"] == [7, 1, 4]
    p = kiln("bench", dyn_plan, "--iterations", "2", "--shapes", "x:9x1x4")
    assert p.returncode == EXIT_RUNTIME and errors(p) == ["KLN-E2006"], p.stderr


def test_image_sets_the_shape(tmp_path):
    """An image input with dynamic H and W takes the image's size (or --image-size)."""
    nodes = [helper.make_node("Add", ["img", "zero"], ["y"], name="identity")]
    m = make_model(nodes, [vi("img", TensorProto.FLOAT, [1, 3, "H", "W"])], [vi("y", TensorProto.FLOAT, None)],
                   [numpy_helper.from_array(np.zeros(1, np.float32), "zero")])
    onnx.save(m, tmp_path / "img.onnx")
    plan = tmp_path / "img.kiln"
    p = kiln("build", tmp_path / "img.onnx", "-o", plan, "--min-shapes", "img:1x3x4x4",
             "--max-shapes", "img:1x3x16x16")
    assert p.returncode == EXIT_OK, p.stderr
    write_png(tmp_path / "a.png", np.full((6, 10, 3), 51, np.uint8))
    p = kiln("run", plan, "--image", f"img={tmp_path / 'a.png'}", "--output-dir", tmp_path / "o")
    assert p.returncode == EXIT_OK, p.stderr
    y = np.load(tmp_path / "o" / "y.npy")
    assert y.shape == (1, 3, 6, 10)
    np.testing.assert_allclose(y, 0.2, atol=1e-6)
    p = kiln("run", plan, "--image", f"img={tmp_path / 'a.png'}", "--image-size", "12x8", "--output-dir",
             tmp_path / "o2")
    assert p.returncode == EXIT_OK, p.stderr
    assert np.load(tmp_path / "o2" / "y.npy").shape == (1, 3, 12, 8)
    p = kiln("run", plan, "--image", f"img={tmp_path / 'a.png'}", "--image-size", "20x8")
    assert p.returncode == EXIT_RUNTIME and errors(p) == ["KLN-E2006"], p.stderr
    assert "input 'img' dimension 2 is 20, outside the range [4, 16]" in p.stderr


@pytest.mark.parametrize("code,exit_code", [("KLN-E2006", EXIT_RUNTIME), ("KLN-E2007", EXIT_USAGE)])
def test_profile_error_exit_codes(code, exit_code):
    p = kiln("explain", code)
    assert p.returncode == EXIT_OK
    assert f"exit code: {exit_code}" in p.stdout
