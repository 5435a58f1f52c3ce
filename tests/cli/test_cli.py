"""End-to-end tests of the `kiln` command-line tool.

Each test builds tiny ONNX models with onnx.helper (only ops every kiln build has: Add, Mul),
runs the binary (env KILN_BIN, default /work/main/build-cli/kiln) and checks exit codes,
messages and numbers. Error cases check that each problem gets its own error code and exit
code, and that kiln never dies from a signal.
"""
import json
import os
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
KILN = os.environ.get("KILN_BIN", "/work/main/build-cli/kiln")

# Exit codes documented in `kiln --help` and docs/cli.md.
EXIT_OK, EXIT_USAGE, EXIT_IO, EXIT_MODEL, EXIT_UNSUPPORTED, EXIT_PLAN, EXIT_RUNTIME = 0, 2, 3, 4, 5, 6, 7


@pytest.fixture(scope="session", autouse=True)
def kiln_binary():
    assert os.access(KILN, os.X_OK), f"kiln binary not found at {KILN} (set KILN_BIN)"


def kiln(*args, cwd=None):
    """Runs kiln; asserts it exited normally (a negative code means it died from a signal)."""
    p = subprocess.run([KILN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert p.returncode >= 0, f"kiln crashed with signal {-p.returncode}:\n{p.stderr}"
    return p


def errors(p):
    """The error codes printed on stderr, in order."""
    return re.findall(r"error\[(KLN-E\d{4})\]", p.stderr)


def make_model(nodes, inputs, outputs, initializers=(), opset=17, ir_version=10):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln-test")
    m.ir_version = ir_version
    return m


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


B = np.array([1.0, 2.0, 3.0], np.float32)
W = np.linspace(-1, 1, 64, dtype=np.float32)  # big enough that a half-file cuts its data


def tiny_model():
    """y = (x + b) * (x + b), z = x * w; x: f32[1x3]."""
    nodes = [
        helper.make_node("Add", ["x", "b"], ["t"], name="add0"),
        helper.make_node("Mul", ["t", "t"], ["y"], name="mul0"),
        helper.make_node("Mul", ["x2", "w"], ["z"], name="mul1"),
    ]
    return make_model(
        nodes,
        [vi("x", TensorProto.FLOAT, [1, 3]), vi("x2", TensorProto.FLOAT, [64])],
        [vi("y", TensorProto.FLOAT, [1, 3]), vi("z", TensorProto.FLOAT, [64])],
        [numpy_helper.from_array(B, "b"), numpy_helper.from_array(W, "w")],
    )


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), path)
    x = np.array([[1.0, -2.0, 0.5]], np.float32)
    x2 = np.arange(64, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "x2.npy", x2)
    return path, x, x2


@pytest.fixture
def tiny_plan(tiny, tmp_path):
    path, x, x2 = tiny
    plan = tmp_path / "tiny.kiln"
    p = kiln("build", path, "-o", plan)
    assert p.returncode == EXIT_OK, p.stderr
    return plan, x, x2


def run_args(tmp_path):
    return ["--input", f"x={tmp_path / 'x.npy'}", "--input", f"x2={tmp_path / 'x2.npy'}"]


# ---- general ---------------------------------------------------------------------------


def test_version():
    p = kiln("--version")
    assert p.returncode == EXIT_OK
    assert re.match(r"kiln \d+\.\d+\.\d+", p.stdout)


def test_help_documents_exit_codes():
    p = kiln("--help")
    assert p.returncode == EXIT_OK
    assert "Exit codes" in p.stdout
    for code in range(8):
        assert re.search(rf"^\s+{code}\s+\S", p.stdout, re.M), f"exit code {code} not documented"
    for sub in ["check", "build", "run", "inspect", "bench", "ops", "explain"]:
        assert sub in p.stdout


def test_usage_errors():
    assert kiln().returncode == EXIT_USAGE  # no subcommand
    assert kiln("frobnicate").returncode == EXIT_USAGE
    assert kiln("build").returncode == EXIT_USAGE  # missing model


def test_missing_files_are_io_errors(tmp_path):
    missing = tmp_path / "nope.onnx"
    for cmd in (["check", missing], ["build", missing], ["run", missing], ["inspect", tmp_path / "nope.kiln"]):
        p = kiln(*cmd)
        assert p.returncode == EXIT_IO, (cmd, p.stderr)
        assert errors(p)[-1] == "KLN-E0003"


# ---- check -----------------------------------------------------------------------------


def test_check_clean_model(tiny):
    path, _, _ = tiny
    p = kiln("check", path)
    assert p.returncode == EXIT_OK, p.stderr
    assert errors(p) == []
    assert "opsets: ai.onnx 17" in p.stdout
    assert "nodes: 3" in p.stdout
    assert "ops: 2 types, 2 supported" in p.stdout
    assert "Add x1, Mul x2" in p.stdout
    assert re.search(r"^\s+x\s+f32\[1x3\]$", p.stdout, re.M)
    assert re.search(r"^\s+y\s+f32\[1x3\]$", p.stdout, re.M)
    assert "initializers: 2" in p.stdout
    assert p.stdout.rstrip().endswith("check: ok")


def test_check_lists_every_problem(tmp_path):
    """Two unsupported ops and a dangling input: all three reported in one run."""
    nodes = [
        helper.make_node("KilnTestUnsupportedA", ["x"], ["a"], name="fancy_a"),
        helper.make_node("Add", ["a", "weights_that_were_dropped"], ["b"], name="add_dangling"),
        helper.make_node("KilnTestUnsupportedB", ["b"], ["c"], name="fancy_b1"),
        helper.make_node("KilnTestUnsupportedB", ["c"], ["y"], name="fancy_b2"),
    ]
    m = make_model(nodes, [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "bad.onnx"
    onnx.save(m, path)
    p = kiln("check", path)
    codes = errors(p)
    assert sorted(codes) == ["KLN-E1004"] * 3 + ["KLN-E1005"], p.stderr
    for name in ["KilnTestUnsupportedA", "KilnTestUnsupportedB", "fancy_a", "fancy_b1", "fancy_b2",
                 "weights_that_were_dropped", "add_dangling"]:
        assert name in p.stderr, name
    assert all(line.startswith("error[KLN-E") for line in p.stderr.splitlines())
    # The summary is still printed, with the unsupported op types counted.
    assert "ops: 3 types, 1 supported; unsupported: KilnTestUnsupportedA (1 node, opset 17), " \
           "KilnTestUnsupportedB (2 nodes, opset 17)" in p.stdout
    assert "check: 4 problems" in p.stdout
    # The exit code is that of the first problem (the dangling input: invalid model).
    assert p.returncode == EXIT_MODEL


def test_unsupported_op(tmp_path):
    m = make_model([helper.make_node("KilnTestUnsupportedA", ["x"], ["y"], name="fancy")],
                   [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "unsupported.onnx"
    onnx.save(m, path)
    for cmd in ("check", "build"):
        p = kiln(cmd, path)
        assert p.returncode == EXIT_UNSUPPORTED, p.stderr
        assert errors(p) == ["KLN-E1004"]
        assert "at node 'fancy' (KilnTestUnsupportedA, opset 17)" in p.stderr
        assert "hint:" in p.stderr


def test_truncated_onnx(tiny, tmp_path):
    path, _, _ = tiny
    data = path.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    for cmd in ("check", "build", "run"):
        p = kiln(cmd, cut)
        assert p.returncode == EXIT_MODEL, (cmd, p.stderr)
        assert errors(p) == ["KLN-E1001"], p.stderr
        assert "truncated" in p.stderr


def test_random_bytes(tmp_path):
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(1234).bytes(4096))
    for cmd in ("check", "build"):
        p = kiln(cmd, path)
        assert p.returncode == EXIT_MODEL, p.stderr
        assert errors(p) == ["KLN-E1001"]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    p = kiln("check", path)
    assert p.returncode == EXIT_MODEL
    assert errors(p) == ["KLN-E1001"]


def test_wrong_ir_version(tmp_path):
    m = tiny_model()
    m.ir_version = 99
    path = tmp_path / "ir99.onnx"
    onnx.save(m, path)
    for cmd in ("check", "build"):
        p = kiln(cmd, path)
        assert p.returncode == EXIT_UNSUPPORTED, p.stderr
        assert errors(p) == ["KLN-E1002"]
        assert "IR version 99" in p.stderr
    assert "IR version 99" in kiln("check", path).stdout  # the summary still reads it


def test_missing_initializer(tmp_path):
    m = tiny_model()
    del m.graph.initializer[0]  # 'b' now dangles
    path = tmp_path / "dangling.onnx"
    onnx.save(m, path)
    for cmd in ("check", "build"):
        p = kiln(cmd, path)
        assert p.returncode == EXIT_MODEL, p.stderr
        assert errors(p) == ["KLN-E1005"]
        assert "input 'b' is not produced" in p.stderr
        assert "at node 'add0' (Add, opset 17)" in p.stderr


def test_cycle(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
             helper.make_node("Add", ["a", "x"], ["b"], name="n2")]
    m = make_model(nodes, [vi("x", TensorProto.FLOAT, [3])], [vi("b", TensorProto.FLOAT, [3])])
    path = tmp_path / "cycle.onnx"
    onnx.save(m, path)
    for cmd in ("check", "build"):
        p = kiln(cmd, path)
        assert p.returncode == EXIT_MODEL, p.stderr
        assert errors(p) == ["KLN-E1006"], p.stderr
        assert "cycle" in p.stderr and "'n2'" in p.stderr


# ---- build -----------------------------------------------------------------------------


def test_build_prints_phases_and_size(tiny, tmp_path):
    path, _, _ = tiny
    plan = tmp_path / "out.kiln"
    p = kiln("build", path, "-o", plan)
    assert p.returncode == EXIT_OK, p.stderr
    assert plan.read_bytes()[:8] == b"KILNPLAN"
    for phase in ("parse", "infer", "passes", "serialize", "write"):
        assert re.search(rf"^phase {phase}\s+\d+\.\d+ ms$", p.stdout, re.M), phase
    assert f"({plan.stat().st_size:,} bytes)" in p.stdout
    assert not Path(str(plan) + ".tmp").exists()


def test_build_default_output_name(tiny):
    path, _, _ = tiny
    assert kiln("build", path).returncode == EXIT_OK
    assert path.with_suffix(".kiln").exists()


def symbolic_model():
    nodes = [helper.make_node("Add", ["x", "b"], ["y"], name="add0")]
    return make_model(nodes, [vi("x", TensorProto.FLOAT, ["N", 3])], [vi("y", TensorProto.FLOAT, ["N", 3])],
                      [numpy_helper.from_array(B, "b")])


def test_build_shapes(tmp_path):
    path = tmp_path / "sym.onnx"
    onnx.save(symbolic_model(), path)
    plan = tmp_path / "sym.kiln"
    p = kiln("build", path, "--shapes", "x:4x3", "-o", plan)
    assert p.returncode == EXIT_OK, p.stderr
    info = json.loads(kiln("inspect", plan, "--json").stdout)
    assert info["inputs"][0]["shape"] == [4, 3]
    assert info["layers"][0]["outputs"][0]["shape"] == [4, 3]
    # Without --shapes the dim stays symbolic and is resolved at run time.
    plan2 = tmp_path / "sym2.kiln"
    assert kiln("build", path, "-o", plan2).returncode == EXIT_OK
    assert json.loads(kiln("inspect", plan2, "--json").stdout)["inputs"][0]["shape"] == ["N", 3]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "x.npy", x)
    p = kiln("run", plan2, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "o")
    assert p.returncode == EXIT_OK, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "y.npy"), x + B)


@pytest.mark.parametrize("args,code,err", [
    (["--shapes", "x4x3"], EXIT_USAGE, "KLN-E0002"),             # no NAME:
    (["--shapes", "x:4xq"], EXIT_USAGE, "KLN-E0002"),            # bad dims
    (["--shapes", "nosuch:4x3"], EXIT_USAGE, "KLN-E0005"),       # unknown input
    (["--shapes", "x:4x5"], EXIT_MODEL, "KLN-E2001"),            # fixed dim differs
    (["--disable-pass", "no_such_pass"], EXIT_USAGE, "KLN-E0002"),
    (["--dump-after", "no_such_pass"], EXIT_USAGE, "KLN-E0002"),
    (["--opt-level", "9"], EXIT_USAGE, None),                    # CLI11 range check
])
def test_build_option_errors(tmp_path, args, code, err):
    path = tmp_path / "sym.onnx"
    onnx.save(symbolic_model(), path)
    p = kiln("build", path, *args)
    assert p.returncode == code, p.stderr
    if err:
        assert errors(p) == [err], p.stderr
    assert not path.with_suffix(".kiln").exists()


def test_build_options_take_effect(tmp_path):
    """Add(b, b) of a constant folds away at the default level, not at 0 or with the pass off."""
    nodes = [helper.make_node("Add", ["b", "b"], ["c"], name="fold_me"),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    m = make_model(nodes, [vi("x", TensorProto.FLOAT, [3])], [vi("y", TensorProto.FLOAT, [3])],
                   [numpy_helper.from_array(B, "b")])
    path = tmp_path / "fold.onnx"
    onnx.save(m, path)

    def layers(*args):
        plan = tmp_path / "o.kiln"
        p = kiln("build", path, "-o", plan, *args)
        assert p.returncode == EXIT_OK, (args, p.stderr)
        return [l["name"] for l in json.loads(kiln("inspect", plan, "--json").stdout)["layers"]], p

    assert layers()[0] == ["add"]
    assert layers("--opt-level", "0")[0] == ["fold_me", "add"]
    assert layers("--disable-pass", "constant_folding")[0] == ["fold_me", "add"]
    names, p = layers("--dump-after", "constant_folding")
    assert "graph after pass constant_folding" in p.stderr and "Add(" in p.stderr
    assert layers("--shapes", "x:3")[0] == ["add"]


# ---- run -------------------------------------------------------------------------------


def test_run_plan(tiny_plan, tmp_path):
    plan, x, x2 = tiny_plan
    out = tmp_path / "outs"
    p = kiln("run", plan, *run_args(tmp_path), "--output-dir", out)
    assert p.returncode == EXIT_OK, p.stderr
    y = (x + B) ** 2
    assert re.search(r"^inference: \d+\.\d+ ms$", p.stdout, re.M)
    assert "output y: f32[1x3]" in p.stdout
    assert f"min {y.min():g}  max {y.max():g}" in p.stdout
    assert "values: 4 0 12.25" in p.stdout
    assert "output z: f32[64]" in p.stdout and "(64 values)" in p.stdout
    np.testing.assert_array_equal(np.load(out / "y.npy"), y)
    np.testing.assert_array_equal(np.load(out / "z.npy"), x2 * W)


def test_run_onnx_directly_and_npz(tiny, tmp_path):
    path, x, x2 = tiny
    np.savez(tmp_path / "in.npz", x=x, x2=x2, y_expected=np.zeros(1))
    p = kiln("run", path, "--inputs", tmp_path / "in.npz", "--output-npz", tmp_path / "out.npz")
    assert p.returncode == EXIT_OK, p.stderr
    assert p.stdout.startswith("built ")
    assert "ignoring 'y_expected'" in p.stderr
    out = np.load(tmp_path / "out.npz")
    assert sorted(out.files) == ["y", "z"]
    np.testing.assert_array_equal(out["y"], (x + B) ** 2)


def test_run_missing_input(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    p = kiln("run", plan, "--input", f"x={tmp_path / 'x.npy'}")
    assert p.returncode == EXIT_USAGE
    assert errors(p) == ["KLN-E5002"]
    assert "x2 f32[64]" in p.stderr
    p = kiln("run", plan)
    assert "x f32[1x3], x2 f32[64]" in p.stderr


def test_run_wrong_shape(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    p = kiln("run", plan, *run_args(tmp_path))
    assert p.returncode == EXIT_RUNTIME
    assert errors(p) == ["KLN-E2005"]
    assert "input 'x' expects shape 1x3, got 1x4" in p.stderr


def test_run_wrong_dtype(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.float64))
    p = kiln("run", plan, *run_args(tmp_path))
    assert p.returncode == EXIT_RUNTIME
    assert errors(p) == ["KLN-E2005"]
    assert "f64" in p.stderr


def test_run_input_errors(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    x = tmp_path / "x.npy"
    p = kiln("run", plan, "--input", f"nosuch={x}")
    assert p.returncode == EXIT_USAGE and errors(p) == ["KLN-E0005"]
    assert "x f32[1x3]" in p.stderr  # lists the valid inputs
    p = kiln("run", plan, "--input", "x")
    assert p.returncode == EXIT_USAGE and errors(p) == ["KLN-E0002"]
    p = kiln("run", plan, "--input", f"x={x}", "--input", f"x={x}")
    assert p.returncode == EXIT_USAGE and "given twice" in p.stderr
    p = kiln("run", plan, "--input", f"x={tmp_path / 'missing.npy'}")
    assert p.returncode == EXIT_IO and errors(p) == ["KLN-E0003"]
    np.save(tmp_path / "f.npy", np.asfortranarray(np.zeros((2, 3), np.float32)))
    p = kiln("run", plan, "--input", f"x={tmp_path / 'f.npy'}")
    assert p.returncode == EXIT_USAGE and "Fortran" in p.stderr
    (tmp_path / "bad.npz").write_bytes(b"PK not really a zip")
    p = kiln("run", plan, "--inputs", tmp_path / "bad.npz")
    assert p.returncode == EXIT_IO and errors(p) == ["KLN-E0003"]


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                   np.uint32, np.int64, np.uint64])
def test_run_npy_dtypes(tmp_path, dtype):
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    m = make_model([helper.make_node("Add", ["a", "a"], ["y"], name="add")],
                   [vi("a", onnx_type, [2, 2])], [vi("y", onnx_type, [2, 2])])
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    a = np.array([[1, 2], [3, 4]], dtype)
    np.save(tmp_path / "a.npy", a)
    p = kiln("run", path, "--input", f"a={tmp_path / 'a.npy'}", "--output-dir", tmp_path / "o")
    assert p.returncode == EXIT_OK, p.stderr
    y = np.load(tmp_path / "o" / "y.npy")
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, a + a)


def test_output_dir_sanitising(tmp_path):
    names = ["scores/0:1", "scores:0/1", "../escape", "ok.name-1"]
    nodes = [helper.make_node("Add", ["x", "x"], [n], name=f"n{i}") for i, n in enumerate(names)]
    m = make_model(nodes, [vi("x", TensorProto.FLOAT, [2])], [vi(n, TensorProto.FLOAT, [2]) for n in names])
    path = tmp_path / "names.onnx"
    onnx.save(m, path)
    np.save(tmp_path / "x.npy", np.array([1, 2], np.float32))
    out = tmp_path / "out"
    p = kiln("run", path, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", out)
    assert p.returncode == EXIT_OK, p.stderr
    # Same sanitised name twice: the later one is numbered.
    assert sorted(os.listdir(out)) == [".._escape.npy", "ok.name-1.npy", "scores_0_1.npy", "scores_0_1_2.npy"]
    assert not (tmp_path / "escape.npy").exists()
    np.testing.assert_array_equal(np.load(out / "scores_0_1.npy"), [2, 4])


# ---- images ----------------------------------------------------------------------------


def image_model(h, w, c=3):
    nodes = [helper.make_node("Add", ["img", "zero"], ["y"], name="identity")]
    return make_model(nodes, [vi("img", TensorProto.FLOAT, [1, c, h, w])], [vi("y", TensorProto.FLOAT, [1, c, h, w])],
                      [numpy_helper.from_array(np.zeros(1, np.float32), "zero")])


def write_png(path, pixels):
    from PIL import Image
    Image.fromarray(pixels).save(path)


def test_run_image(tmp_path):
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "img.png", pixels)
    onnx.save(image_model(4, 5), tmp_path / "m.onnx")
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    cases = {
        "plain": ([], pixels.transpose(2, 0, 1) / 255.0),
        "norm": (["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"],
                 (pixels.transpose(2, 0, 1) / 255.0 - mean[:, None, None]) / std[:, None, None]),
        "bgr_scale1": (["--bgr", "--scale", "1", "--mean", "100"], pixels[:, :, ::-1].transpose(2, 0, 1) - 100.0),
    }
    for name, (args, expected) in cases.items():
        out = tmp_path / name
        p = kiln("run", tmp_path / "m.onnx", "--image", f"img={tmp_path / 'img.png'}", *args, "--output-dir", out)
        assert p.returncode == EXIT_OK, (name, p.stderr)
        np.testing.assert_allclose(np.load(out / "y.npy")[0], expected, rtol=1e-5, atol=1e-5, err_msg=name)


def test_run_image_resize_and_gray(tmp_path):
    pixels = np.full((8, 6, 3), 200, np.uint8)
    write_png(tmp_path / "img.png", pixels)
    onnx.save(image_model(3, 4), tmp_path / "rgb.onnx")
    p = kiln("run", tmp_path / "rgb.onnx", "--image", f"img={tmp_path / 'img.png'}", "--output-dir", tmp_path / "a")
    assert p.returncode == EXIT_OK, p.stderr
    y = np.load(tmp_path / "a" / "y.npy")
    assert y.shape == (1, 3, 3, 4)
    np.testing.assert_allclose(y, 200 / 255.0, atol=1e-3)  # a flat image stays flat when resized
    onnx.save(image_model(8, 6, c=1), tmp_path / "gray.onnx")
    p = kiln("run", tmp_path / "gray.onnx", "--image", f"img={tmp_path / 'img.png'}", "--output-dir", tmp_path / "b")
    assert p.returncode == EXIT_OK, p.stderr
    assert np.load(tmp_path / "b" / "y.npy").shape == (1, 1, 8, 6)


def test_run_image_errors(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    write_png(tmp_path / "img.png", np.zeros((2, 2, 3), np.uint8))
    p = kiln("run", plan, "--image", f"x={tmp_path / 'img.png'}")
    assert p.returncode == EXIT_USAGE and "NCHW" in p.stderr  # x is f32[1x3]
    onnx.save(image_model(2, 2), tmp_path / "m.onnx")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG but not really")
    p = kiln("run", tmp_path / "m.onnx", "--image", f"img={tmp_path / 'junk.png'}")
    assert p.returncode == EXIT_USAGE and "not a readable image" in p.stderr
    for bad in (["--mean", "1,2"], ["--std", "0"], ["--scale", "1/0"], ["--image-size", "2x"]):
        p = kiln("run", tmp_path / "m.onnx", "--image", f"img={tmp_path / 'img.png'}", *bad)
        assert p.returncode == EXIT_USAGE, (bad, p.stderr)
        assert errors(p) == ["KLN-E0002"], (bad, p.stderr)


# ---- plans: inspect and corruption -----------------------------------------------------


def test_inspect_text(tiny_plan):
    plan, _, _ = tiny_plan
    p = kiln("inspect", plan)
    assert p.returncode == EXIT_OK, p.stderr
    assert f"format version {plan_format_version(plan)}," in p.stdout and "backend cpu" in p.stdout
    assert f"({plan.stat().st_size:,} bytes)" in p.stdout
    assert re.search(r"^input\s+x\s+f32\[1x3\]$", p.stdout, re.M)
    assert re.search(r"^\s+0\s+add0\s+Add\s+f32\[1x3\], f32\[3\] -> f32\[1x3\]\s+12 B", p.stdout, re.M)
    assert re.search(r"^\s+Mul\s+2\s+256 B$", p.stdout, re.M)  # totals: 64 f32 weights
    assert "kernels per inference: 3 (3 before fusion)" in p.stdout


def test_inspect_json(tiny_plan):
    plan, _, _ = tiny_plan
    p = kiln("inspect", plan, "--json")
    assert p.returncode == EXIT_OK, p.stderr
    info = json.loads(p.stdout)
    assert info["plan"]["format_version"] == plan_format_version(plan)
    assert info["plan"]["backend"] == "cpu"
    assert info["plan"]["file_bytes"] == plan.stat().st_size
    assert info["plan"]["weights_bytes"] >= B.nbytes + W.nbytes
    assert info["plan"]["build_info"]["opt_level"] == 2
    # Three launching nodes; the CPU backend fuses none of them.
    assert info["plan"]["build_info"]["kernels_per_inference"] == {"before_fusion": 3, "after_fusion": 3}
    assert [i["name"] for i in info["inputs"]] == ["x", "x2"]
    assert [o["name"] for o in info["outputs"]] == ["y", "z"]
    layers = {l["name"]: l for l in info["layers"]}
    assert layers["add0"]["op"] == "Add" and layers["add0"]["weight_bytes"] == B.nbytes
    assert layers["mul1"]["weight_bytes"] == W.nbytes
    assert info["totals"]["Mul"] == {"layers": 2, "weight_bytes": W.nbytes}


def plan_format_version(plan):
    """The format version in a plan's preamble (after the 8-byte magic)."""
    return struct.unpack_from("<I", plan.read_bytes(), 8)[0]


def patched(plan, tmp_path, fn, name):
    data = bytearray(plan.read_bytes())
    data = fn(data)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def flip_byte(data, offset):
    data[offset] ^= 0x5A
    return data


@pytest.mark.parametrize("cmd", ["inspect", "run"])
def test_corrupt_plan(tiny_plan, tmp_path, cmd):
    plan, _, _ = tiny_plan
    size = plan.stat().st_size
    for offset in (40, size // 2, size - 1):  # flatbuffer, middle, last weight byte
        bad = patched(plan, tmp_path, lambda d: flip_byte(d, offset), "flipped.kiln")
        p = kiln(cmd, bad, *(run_args(tmp_path) if cmd == "run" else []))
        assert p.returncode == EXIT_PLAN, (offset, p.stderr)
        assert errors(p) == ["KLN-E4003"]
        assert "checksum" in p.stderr


def test_truncated_plan(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    size = plan.stat().st_size
    for keep, code in ((size - 1, "KLN-E4003"), (size // 2, "KLN-E4003"), (20, "KLN-E4003"), (5, "KLN-E4001")):
        bad = patched(plan, tmp_path, lambda d: d[:keep], "cut.kiln")
        p = kiln("inspect", bad)
        assert p.returncode == EXIT_PLAN, (keep, p.stderr)
        assert errors(p) == [code], (keep, p.stderr)


def test_plan_from_newer_format(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan

    def bump(d):
        struct.pack_into("<I", d, 8, struct.unpack_from("<I", d, 8)[0] + 1)
        return d

    bad = patched(plan, tmp_path, bump, "newer.kiln")
    for cmd in ("inspect", "run"):
        p = kiln(cmd, bad)
        assert p.returncode == EXIT_PLAN
        assert errors(p) == ["KLN-E4002"]
        assert f"format version {plan_format_version(plan) + 1}" in p.stderr and "newer kiln" in p.stderr


def test_not_a_plan(tmp_path):
    bad = tmp_path / "model.kiln"
    bad.write_bytes(b"definitely not a plan" * 10)
    p = kiln("run", bad)
    assert p.returncode == EXIT_PLAN
    assert errors(p) == ["KLN-E4001"]


# ---- ops and explain (and the generated docs) ------------------------------------------


def test_ops():
    p = kiln("ops")
    assert p.returncode == EXIT_OK
    assert re.search(r"^Add\s+ai\.onnx\s+\d+-\d+\s+binary_arith\s+", p.stdout, re.M)
    md = kiln("ops", "--markdown")
    assert md.returncode == EXIT_OK
    assert "| Operator | Domain | Opsets | Family | Summary |" in md.stdout
    assert re.search(r"^\| Add \| ai\.onnx \| \d+-\d+ \| binary_arith \| ", md.stdout, re.M)


def test_docs_ops_md_is_current():
    md = kiln("ops", "--markdown").stdout
    assert (REPO / "docs" / "ops.md").read_text() == md, \
        "docs/ops.md is stale: regenerate with `kiln ops --markdown -o docs/ops.md`"


def catalogue_codes():
    text = (REPO / "include" / "kiln" / "error_codes.def").read_text()
    return [int(n) for n in re.findall(r"^KILN_ERROR\(\w+,\s*(\d+),", text, re.M)]


def test_explain():
    p = kiln("explain", "KLN-E1004")
    assert p.returncode == EXIT_OK
    assert p.stdout.startswith("KLN-E1004: unsupported operator")
    assert "kiln ops" in p.stdout and "exit code: 5" in p.stdout
    assert kiln("explain", "1004").stdout == p.stdout
    bad = kiln("explain", "KLN-E9999")
    assert bad.returncode == EXIT_USAGE and errors(bad) == ["KLN-E0002"]
    listing = kiln("explain").stdout
    for n in catalogue_codes():
        assert f"KLN-E{n:04d}" in listing


def test_docs_errors_md_is_current():
    md = kiln("explain", "--markdown")
    assert md.returncode == EXIT_OK
    for n in catalogue_codes():
        assert f"### KLN-E{n:04d}: " in md.stdout
    assert (REPO / "docs" / "errors.md").read_text() == md.stdout, \
        "docs/errors.md is stale: regenerate with `kiln explain --markdown -o docs/errors.md`"


# ---- shape errors: at check time (model) and at run time (runtime) ---------------------


def test_check_finds_shape_errors(tmp_path):
    m = make_model([helper.make_node("Add", ["x", "y"], ["z"], name="bad_add")],
                   [vi("x", TensorProto.FLOAT, [2]), vi("y", TensorProto.FLOAT, [3])],
                   [vi("z", TensorProto.FLOAT, None)])
    path = tmp_path / "shapes.onnx"
    onnx.save(m, path)
    p = kiln("check", path)
    assert p.returncode == EXIT_MODEL, p.stderr
    assert errors(p) == ["KLN-E2001"]
    assert "bad_add" in p.stderr


def test_run_time_shape_error_is_a_runtime_error(tmp_path):
    m = make_model([helper.make_node("Add", ["x", "y"], ["z"], name="dyn_add")],
                   [vi("x", TensorProto.FLOAT, ["N"]), vi("y", TensorProto.FLOAT, ["M"])],
                   [vi("z", TensorProto.FLOAT, None)])
    path = tmp_path / "dyn.onnx"
    onnx.save(m, path)
    np.save(tmp_path / "x.npy", np.zeros(2, np.float32))
    np.save(tmp_path / "y.npy", np.zeros(3, np.float32))
    p = kiln("run", path, "--input", f"x={tmp_path / 'x.npy'}", "--input", f"y={tmp_path / 'y.npy'}")
    assert p.returncode == EXIT_RUNTIME, p.stderr
    assert errors(p) == ["KLN-E2001"]
    assert "dyn_add" in p.stderr


# ---- backend options, bench, CUDA additions (all runnable without a GPU) ----------------


def gpu_present():
    """True when this machine has a usable NVIDIA GPU (then the no-GPU tests do not apply)."""
    import shutil
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    p = subprocess.run([smi, "-L"], capture_output=True, text=True)
    return p.returncode == 0 and "GPU" in p.stdout


@pytest.mark.parametrize("cmd", ["build", "run", "bench", "inspect"])
@pytest.mark.parametrize("flags", [["--fp16"], ["--bf16"], ["--no-tf32"], ["--no-nhwc"], ["--device", "0"],
                                   ["--backend", "cpu", "--fp16"], ["--tactic-sources", "-cublaslt"],
                                   ["--library-tradeoff", "5"]])
def test_cuda_only_options_need_cuda_backend(tiny, tmp_path, cmd, flags):
    path, _, _ = tiny
    p = kiln(cmd, path, *flags)
    assert p.returncode == EXIT_USAGE, p.stderr
    assert errors(p) == ["KLN-E0002"], p.stderr
    flag = [f for f in flags if f.startswith("--") and f != "--backend"][-1]
    assert flag in p.stderr
    assert "cuda backend only" in p.stderr and "hint: add --backend cuda" in p.stderr
    assert not path.with_suffix(".kiln").exists()


def test_fp16_and_bf16_exclude_each_other(tiny):
    path, _, _ = tiny
    for cmd in ("build", "bench"):
        p = kiln(cmd, path, "--backend", "cuda", "--fp16", "--bf16")
        assert p.returncode == EXIT_USAGE, p.stderr
        assert errors(p) == ["KLN-E0002"] and "exclude each other" in p.stderr


@pytest.mark.parametrize("value,why", [("tensorrt", "unknown source 'tensorrt'"),
                                       ("cudnn,-kiln", "mixes signed"),
                                       ("-kiln,-cudnn,-cublaslt", "no source left")])
def test_bad_tactic_sources(tiny, value, why):
    if "cuda" not in kiln("--version").stdout:
        pytest.skip("kiln built without the cuda backend")
    path, _, _ = tiny
    p = kiln("build", path, "--backend", "cuda", f"--tactic-sources={value}")
    assert p.returncode == EXIT_USAGE, p.stderr
    assert errors(p) == ["KLN-E0002"], p.stderr
    assert why in p.stderr and "hint:" in p.stderr


def test_bad_backend_name(tiny):
    path, _, _ = tiny
    p = kiln("build", path, "--backend", "tpu")
    assert p.returncode == EXIT_USAGE


def test_build_reports_backend(tiny, tmp_path):
    path, _, _ = tiny
    p = kiln("build", path, "-o", tmp_path / "t.kiln", "--backend", "cpu")
    assert p.returncode == EXIT_OK, p.stderr
    assert re.search(r"^plan: .*, opt level 2, backend cpu$", p.stdout, re.M), p.stdout


def test_plan_ignores_build_options(tiny_plan, tmp_path):
    """A plan's backend and precision are fixed: build flags are noted and ignored."""
    plan, x, _ = tiny_plan
    p = kiln("run", plan, *run_args(tmp_path), "--fp16", "--backend", "cuda")
    assert p.returncode == EXIT_OK, p.stderr
    assert "note: --backend is ignored" in p.stderr and "note: --fp16 is ignored" in p.stderr
    assert "values: 4 0 12.25" in p.stdout


@pytest.mark.skipif(gpu_present(), reason="checks the failure on machines without a GPU")
@pytest.mark.parametrize("cmd", ["bench", "build", "run"])
def test_cuda_without_gpu_fails_cleanly(tiny, tmp_path, cmd):
    """No GPU (or a kiln built without CUDA): NoGpu, runtime exit code, no crash."""
    path, _, _ = tiny
    p = kiln(cmd, path, "--backend", "cuda", "--fp16", *(run_args(tmp_path) if cmd == "run" else []))
    assert p.returncode == EXIT_RUNTIME, p.stderr
    assert errors(p) == ["KLN-E6004"], p.stderr
    assert "kiln was built without CUDA" in p.stderr or "no CUDA GPU" in p.stderr
    assert "hint:" in p.stderr
    assert not path.with_suffix(".kiln").exists()


@pytest.mark.skipif(gpu_present(), reason="checks the failure on machines without a GPU")
def test_bench_device_without_gpu(tiny_plan):
    plan, _, _ = tiny_plan
    p = kiln("bench", plan, "--device", "0", "--iterations", "1")
    assert p.returncode == EXIT_RUNTIME and errors(p) == ["KLN-E6004"], p.stderr


def bench_json(*args):
    p = kiln("bench", *args, "--json", "-")
    assert p.returncode == EXIT_OK, p.stderr
    return json.loads(p.stdout), p


def check_stats(s, count):
    assert s["count"] == count
    assert 0 <= s["min"] <= s["median"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]
    assert s["min"] <= s["mean"] <= s["max"]


def test_bench_cpu_iterations(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    info, p = bench_json(plan, "--iterations", "25", "--warmup-ms", "0")
    assert info["schema"] == "kiln-bench/1"
    assert info["engine"]["backend"] == "cpu" and info["engine"]["source"] == "loaded"
    assert info["engine"]["precision"] is None and info["memory"] is None
    assert info["config"]["iterations"] == 25 and info["config"]["duration_s"] is None
    assert info["config"]["streams"] == 1 and info["config"]["batch"] == 1
    assert info["throughput"]["inferences"] == 25
    assert info["throughput"]["wall_s"] > 0
    assert info["throughput"]["items_per_s"] == pytest.approx(info["throughput"]["qps"])
    check_stats(info["times_ms"]["latency"], 25)
    for k in ("gpu_compute", "enqueue", "h2d", "d2h"):
        assert info["times_ms"][k] is None
    assert [(i["name"], i["dtype"], i["shape"]) for i in info["inputs"]] == [
        ("x", "f32", [1, 3]), ("x2", "f32", [64])]
    assert info["inputs"][0]["source"] == "random uniform [-1, 1] (seed 1)"
    assert [o["name"] for o in info["outputs"]] == ["y", "z"]
    assert info["warnings"] == []
    # The human report went to stderr, as stdout holds the JSON.
    assert "throughput:" in p.stderr and "latency (execute)" in p.stderr


def test_bench_streams_and_duration(tiny, tmp_path):
    path, _, _ = tiny
    out = tmp_path / "bench.json"
    p = kiln("bench", path, "--streams", "3", "--duration-s", "0.3", "--warmup-ms", "10",
             "--json", out)
    assert p.returncode == EXIT_OK, p.stderr
    assert f"wrote {out}" in p.stdout
    assert re.search(r"^throughput: \d+\.\d+ qps, \d+\.\d items/s \(batch 1; \d+ inferences in "
                     r"\d+\.\d+ s\)$", p.stdout, re.M), p.stdout
    assert re.search(r"^  latency \(execute\)(\s+\d+\.\d{4}){7}$", p.stdout, re.M), p.stdout
    info = json.loads(out.read_text())
    assert info["engine"]["source"] == "built"
    assert info["config"]["streams"] == 3 and info["config"]["duration_s"] == 0.3
    assert info["throughput"]["wall_s"] >= 0.3
    assert info["times_ms"]["latency"]["count"] == info["throughput"]["inferences"] >= 3


def test_bench_inputs_and_shapes(tmp_path):
    path = tmp_path / "sym.onnx"
    onnx.save(symbolic_model(), path)
    plan = tmp_path / "sym.kiln"
    assert kiln("build", path, "-o", plan).returncode == EXIT_OK
    # Symbolic dims: random data needs --shapes (or a file).
    p = kiln("bench", plan, "--iterations", "2")
    assert p.returncode == EXIT_USAGE and errors(p) == ["KLN-E2004"], p.stderr
    assert "--shapes x:" in p.stderr
    info, _ = bench_json(plan, "--iterations", "2", "--shapes", "x:5x3")
    assert info["inputs"][0]["shape"] == [5, 3] and info["config"]["batch"] == 5
    np.save(tmp_path / "x.npy", np.ones((4, 3), np.float32))
    info, _ = bench_json(plan, "--iterations", "2", "--input", f"x={tmp_path / 'x.npy'}")
    assert info["inputs"][0]["source"] == str(tmp_path / "x.npy")
    assert info["config"]["batch"] == 4
    # Data of the wrong dtype is refused before anything runs.
    np.save(tmp_path / "xi.npy", np.ones((4, 3), np.int32))
    p = kiln("bench", plan, "--iterations", "2", "--input", f"x={tmp_path / 'xi.npy'}")
    assert p.returncode == EXIT_RUNTIME and errors(p) == ["KLN-E2005"], p.stderr
    p = kiln("bench", plan, "--input", f"nosuch={tmp_path / 'x.npy'}")
    assert p.returncode == EXIT_USAGE and errors(p) == ["KLN-E0005"]


def test_bench_integer_inputs_by_name(tmp_path):
    """BERT-style inputs: the mask is all ones and token types all zeros whatever the seed."""
    names = ["input_ids", "attention_mask", "token_type_ids"]
    nodes = [helper.make_node("Add", [n, n], [n + "_2"], name=n + "_add") for n in names]
    m = make_model(nodes, [vi(n, TensorProto.INT64, [2, 8]) for n in names],
                   [vi(n + "_2", TensorProto.INT64, [2, 8]) for n in names])
    path = tmp_path / "bert_like.onnx"
    onnx.save(m, path)
    info, _ = bench_json(path, "--iterations", "1", "--seed", "7")
    src = {i["name"]: i["source"] for i in info["inputs"]}
    assert src["input_ids"] == "random integers [0, 100) (seed 7)"
    assert src["attention_mask"].startswith("all 1")
    assert src["token_type_ids"].startswith("all 0")
    assert info["config"]["seed"] == 7


@pytest.mark.parametrize("args", [["--iterations", "3", "--duration-s", "1"], ["--streams", "0"],
                                  ["--warmup-ms", "-1"], ["--iterations", "0"]])
def test_bench_option_errors(tiny_plan, args):
    plan, _, _ = tiny_plan
    assert kiln("bench", plan, *args).returncode == EXIT_USAGE


def test_bench_missing_and_corrupt(tiny_plan, tmp_path):
    plan, _, _ = tiny_plan
    p = kiln("bench", tmp_path / "nope.kiln")
    assert p.returncode == EXIT_IO and errors(p) == ["KLN-E0003"]
    bad = patched(plan, tmp_path, lambda d: flip_byte(d, 40), "flipped.kiln")
    p = kiln("bench", bad)
    assert p.returncode == EXIT_PLAN and errors(p) == ["KLN-E4003"]


def test_inspect_cpu_plan_has_no_cuda_sections(tiny_plan):
    plan, _, _ = tiny_plan
    info = json.loads(kiln("inspect", plan, "--json").stdout)
    assert info["plan"]["precision"] is None and info["plan"]["allow_tf32"] is None
    assert info["memory"] is None
    assert info["host_fallback"] == {"count": 0, "ops": {}, "nodes": []}
    assert info["reformats"] == {"count": 0, "nodes": []}
    text = kiln("inspect", plan).stdout
    assert "host fallback" not in text and "reformat" not in text and "memory:" not in text


def test_inspect_onnx_directly(tiny):
    path, _, _ = tiny
    p = kiln("inspect", path, "--json")
    assert p.returncode == EXIT_OK, p.stderr
    assert [l["name"] for l in json.loads(p.stdout)["layers"]] == ["add0", "mul0", "mul1"]


@pytest.mark.parametrize("code,exit_code", [("KLN-E6001", EXIT_RUNTIME), ("KLN-E6004", EXIT_RUNTIME),
                                            ("KLN-E6005", EXIT_PLAN), ("KLN-E6006", EXIT_UNSUPPORTED)])
def test_gpu_error_exit_codes(code, exit_code):
    p = kiln("explain", code)
    assert p.returncode == EXIT_OK
    assert f"exit code: {exit_code}" in p.stdout


def test_version_lists_backends():
    assert re.search(r"backends: cpu(, cuda)?\)", kiln("--version").stdout)
