#!/usr/bin/env python3
"""Real models for the kiln-vs-ONNX-Runtime tests: exports (or locates) each model and writes
its seeded input, all cached under ${KILN_CACHE:-$HOME/.cache/kiln}/models.

Architectures come from torchvision and transformers with random weights (weights=None, no
hub download; torch.manual_seed fixes them), exported on the CPU at opset 17 in eval mode.
The PP-OCRv4 text detector is a trained model shipped inside the rapidocr_onnxruntime wheel
and is used in place. Every model of MODELS has one fixed input shape so `kiln build --shapes`
can pin dynamic dims. DYNAMIC_MODELS are the dynamic-plan cases: a model with dynamic input
dims (exported with dynamic axes, or shipped so), one optimisation profile, and the input
shapes that are run from the one plan built for it.

    python tests/models/export_models.py            # export everything missing
    python tests/models/export_models.py resnet50   # one model (or resnet50_dynamic)
"""
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

OPSET = 17
SEED = 0


def cache_dir() -> Path:
    root = os.environ.get("KILN_CACHE") or os.path.join(Path.home(), ".cache", "kiln")
    d = Path(root) / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclasses.dataclass
class ModelSpec:
    """One test model: how to produce the .onnx and its input feeds."""
    name: str
    #: Writes the model to the given path (None: the model is shipped, see `shipped_path`).
    export: Optional[Callable[[Path], None]]
    #: Returns the input feeds (name -> array), deterministic.
    make_inputs: Callable[[], Dict[str, np.ndarray]]
    #: `kiln build --shapes` value for models with dynamic dims ("" when static).
    shapes: str = ""
    #: Locates a model that ships in a package (instead of `export`).
    shipped_path: Optional[Callable[[], Path]] = None


# ---- torch exports -----------------------------------------------------------------------

def _torch_export(module, args, path: Path, input_names: List[str], output_names: List[str],
                  dynamic_axes: Optional[Dict[str, Dict[int, str]]] = None):
    import torch
    module.eval()
    tmp = path.with_suffix(".onnx.tmp")
    kwargs = dict(input_names=input_names, output_names=output_names, opset_version=OPSET,
                  do_constant_folding=True, dynamic_axes=dynamic_axes)
    # The legacy TorchScript exporter needs no onnxscript and gives plain opset-17 graphs;
    # newer torch defaults to the dynamo exporter.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        torch.onnx.export(module, args, str(tmp), dynamo=False, **kwargs)
    os.replace(tmp, path)  # atomic: an interrupted export never leaves a half-written cache


def _out_only(model):
    """torchvision segmentation models return {'out': ...}; export just the tensor."""
    import torch

    class OutOnly(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)["out"]

    return OutOnly(model)


IMAGE_SHAPE = (1, 3, 224, 224)


def _image_input(batch: int = 1) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return {"input": rng.standard_normal((batch,) + IMAGE_SHAPE[1:]).astype(np.float32)}


def _torchvision_exporter(builder: str, segmentation: bool,
                          dynamic_batch: bool = False) -> Callable[[Path], None]:
    def export(path: Path):
        import torch
        import torchvision
        torch.manual_seed(SEED)
        kwargs = {"weights": None, "weights_backbone": None} if segmentation else {"weights": None}
        model = getattr(torchvision.models.segmentation if segmentation else torchvision.models,
                        builder)(**kwargs)
        if segmentation:
            model = _out_only(model)
        x = torch.from_numpy(_image_input()["input"])
        axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
        _torch_export(model, (x,), path, ["input"], ["output"], axes)
    return export


BERT_SEQ = 64


def _bert_inputs(batch: int = 1, seq: int = BERT_SEQ) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    ids = rng.integers(1000, 30522, size=(batch, seq), dtype=np.int64)
    mask = np.zeros((batch, seq), np.int64)
    types = np.zeros((batch, seq), np.int64)
    for r in range(batch):
        n = max(2, seq * 3 // 4 - 5 * r)  # real tokens (48 of 64 in row 0), then padding
        ids[r, 0] = 101      # [CLS]
        ids[r, n - 1] = 102  # [SEP]
        ids[r, n:] = 0       # padding, which the mask hides
        mask[r, :n] = 1
        types[r, n // 2:n] = 1  # second segment
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _export_bert(path: Path, dynamic: bool = False):
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(SEED)
    # Eager attention: the SDPA path traces into ops the legacy exporter handles less well.
    model = BertModel(BertConfig(attn_implementation="eager"))
    feeds = {k: torch.from_numpy(v) for k, v in _bert_inputs().items()}
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.m(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids, return_dict=True)
            return out.last_hidden_state, out.pooler_output

    axes = None
    if dynamic:
        axes = {n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]}
        axes["pooler_output"] = {0: "batch"}
    _torch_export(Wrapper(model), tuple(feeds[n] for n in names), path, names,
                  ["last_hidden_state", "pooler_output"], axes)


# ---- PP-OCRv4 detector (trained, shipped in rapidocr_onnxruntime) ------------------------

PPOCR_HW = (640, 640)


def _ppocr_path() -> Path:
    if os.environ.get("KILN_PPOCR_MODEL"):  # machines without the wheel (the GPU machine)
        return Path(os.environ["KILN_PPOCR_MODEL"])
    import rapidocr_onnxruntime
    return Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"


def _ppocr_inputs(hw=PPOCR_HW) -> Dict[str, np.ndarray]:
    # A real scanned page (skimage's page.png) rather than noise, so the detector's
    # activations and its probability map are the ones it sees in use. Preprocessed the
    # way rapidocr does: BGR, (x/255 - 0.5)/0.5, NCHW; hw = (height, width).
    from PIL import Image
    if os.environ.get("KILN_PPOCR_PAGE"):
        page_path = Path(os.environ["KILN_PPOCR_PAGE"])
    else:
        import skimage
        page_path = Path(skimage.__file__).parent / "data" / "page.png"
    page = Image.open(page_path).convert("RGB")
    page = page.resize((hw[1], hw[0]), Image.BILINEAR)
    bgr = np.asarray(page, dtype=np.float32)[:, :, ::-1]
    x = (bgr / 255.0 - 0.5) / 0.5
    return {"x": np.ascontiguousarray(x.transpose(2, 0, 1)[None]).astype(np.float32)}


MODELS: Dict[str, ModelSpec] = {s.name: s for s in [
    ModelSpec("resnet50", _torchvision_exporter("resnet50", False), _image_input),
    ModelSpec("deeplabv3_resnet50", _torchvision_exporter("deeplabv3_resnet50", True), _image_input),
    ModelSpec("lraspp_mobilenet_v3_large", _torchvision_exporter("lraspp_mobilenet_v3_large", True),
              _image_input),
    ModelSpec("fcn_resnet50", _torchvision_exporter("fcn_resnet50", True), _image_input),
    ModelSpec("bert_base", _export_bert, _bert_inputs),
    ModelSpec("ppocr_v4_det", None, _ppocr_inputs, shapes=f"x:1x3x{PPOCR_HW[0]}x{PPOCR_HW[1]}",
              shipped_path=_ppocr_path),
]}


@dataclasses.dataclass
class DynamicSpec:
    """One dynamic-plan test: a model with dynamic input dims, the optimisation profile its
    plan is built with (`kiln build --min-shapes/--opt-shapes/--max-shapes` values), and the
    cases run from that one plan (case label -> input feeds)."""
    name: str
    #: The model of MODELS this is a variant of: its pytest marker selects this test too.
    base: str
    #: Writes the model with dynamic axes (None: the shipped model is dynamic already).
    export: Optional[Callable[[Path], None]]
    min_shapes: str
    opt_shapes: str
    max_shapes: str
    cases: Dict[str, Callable[[], Dict[str, np.ndarray]]]


def _bert_profile(b, s):
    return ",".join(f"{n}:{b}x{s}" for n in ("input_ids", "attention_mask", "token_type_ids"))


# Sizes are chosen for CPU time (CI: 2 cores): the detector at three page sizes, square and
# not, up to 1280x960 (H x W; multiples of 32 as the detector needs); BERT at three
# (batch, seq) pairs; ResNet-50 at batch 1 and 3. KILN_DYNAMIC_SCALE=gpu gives the ranges
# of the issue for a GPU run: the detector 320..1280, BERT batch 1..64 and seq 16..512,
# ResNet-50 batch 1..256, each from one plan.
_GPU = os.environ.get("KILN_DYNAMIC_SCALE", "") == "gpu"
_PAGES = [(320, 320), (480, 640), (1280, 960), (1280, 1280)] if _GPU else [(320, 320), (480, 640), (1280, 960)]
_BERT = ((1, 16), (8, 128), (64, 512)) if _GPU else ((1, 16), (1, 64), (4, 128))
_BERT_CASES = [(1, 16), (13, 77), (4, 512), (64, 128)] if _GPU else [(1, 64), (2, 32), (3, 128)]
_R50 = (1, 32, 256) if _GPU else (1, 2, 4)
_R50_CASES = (1, 7, 64, 256) if _GPU else (1, 3)
DYNAMIC_MODELS: Dict[str, DynamicSpec] = {s.name: s for s in [
    DynamicSpec("ppocr_v4_det_dynamic", "ppocr_v4_det", None,
                "x:1x3x320x320", "x:1x3x640x640", "x:1x3x1280x1280",
                {f"{h}x{w}": (lambda h=h, w=w: _ppocr_inputs((h, w))) for h, w in _PAGES}),
    DynamicSpec("bert_base_dynamic", "bert_base", lambda p: _export_bert(p, dynamic=True),
                *(_bert_profile(b, s) for b, s in _BERT),
                {f"b{b}s{s}": (lambda b=b, s=s: _bert_inputs(b, s)) for b, s in _BERT_CASES}),
    DynamicSpec("resnet50_dynamic", "resnet50", _torchvision_exporter("resnet50", False, True),
                *(f"input:{b}x3x224x224" for b in _R50),
                {f"b{b}": (lambda b=b: _image_input(b)) for b in _R50_CASES}),
]}


def model_path(name: str) -> Path:
    """Returns the .onnx of `name` (of MODELS or DYNAMIC_MODELS), exporting it into the
    cache when missing."""
    if name in DYNAMIC_MODELS:
        dyn = DYNAMIC_MODELS[name]
        if dyn.export is None:
            return model_path(dyn.base)
        p = cache_dir() / f"{name}.opset{OPSET}.onnx"
        if not p.exists():
            dyn.export(p)
        return p
    spec = MODELS[name]
    if spec.shipped_path is not None:
        p = spec.shipped_path()
        if not p.exists():
            raise FileNotFoundError(f"{name}: {p} is missing; run scripts/setup.sh")
        return p
    p = cache_dir() / f"{name}.opset{OPSET}.onnx"
    if not p.exists():
        spec.export(p)
    return p


def input_files(name: str) -> Dict[str, Path]:
    """Writes (once) each input of `name` as <cache>/<name>.in.<input>.npy; returns name -> path."""
    feeds = MODELS[name].make_inputs()
    out = {}
    for k, v in feeds.items():
        p = cache_dir() / f"{name}.in.{k}.npy"
        if not p.exists():
            tmp = p.with_suffix(".tmp.npy")
            np.save(tmp, v)
            os.replace(tmp, p)
        out[k] = p
    return out


def main(argv: List[str]) -> int:
    names = argv or list(MODELS) + list(DYNAMIC_MODELS)
    for n in names:
        if n not in MODELS and n not in DYNAMIC_MODELS:
            print(f"unknown model '{n}'; known: {', '.join(list(MODELS) + list(DYNAMIC_MODELS))}",
                  file=sys.stderr)
            return 2
        t = time.perf_counter()
        p = model_path(n)
        if n in MODELS:
            input_files(n)
        print(f"{n}: {p} ({(time.perf_counter() - t) * 1e3:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
