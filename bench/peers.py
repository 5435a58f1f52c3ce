#!/usr/bin/env python3
"""PyTorch peers of kiln on the benchmark models, and their ONNX exports.

The models kiln is compared on, each at fixed batch sizes:

  resnet50                   3x224x224   batches 1, 32, 256
  deeplabv3_resnet50         3x512x512   batches 1, 8
  lraspp_mobilenet_v3_large  3x512x512   batches 1, 8
  bert_base                  seq 128     batches 1, 32

Weights are random (no network on the GPU machine); speed does not depend on them.
`export_onnx` writes the model kiln builds (opset 17, fixed shapes, FP32 weights: kiln
lowers precision itself). `time_torch` times PyTorch on the same architecture and shapes:
eager FP16 with channels_last activations and cuDNN autotuning, or torch.compile
(mode='reduce-overhead': Inductor kernels replayed as CUDA graphs). Times are CUDA-event
times of one forward pass with the inputs already on the GPU, median of many runs after a
warm-up; that is the figure to compare with kiln bench's "GPU compute" median.

run_bench.py drives this module together with `kiln bench`. Standalone:

  python3 bench/peers.py [--models resnet50,bert_base] [--compile] [--json out.json]
"""
import argparse
import copy
import json
import sys
import time

import torch

# name -> (input shape without batch, batch sizes)
MODELS = {
    "resnet50": ((3, 224, 224), [1, 32, 256]),
    "deeplabv3_resnet50": ((3, 512, 512), [1, 8]),
    "lraspp_mobilenet_v3_large": ((3, 512, 512), [1, 8]),
    "bert_base": ((128,), [1, 32]),
}
OPSET = 17
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class SegmentationOut(torch.nn.Module):
    """torchvision segmentation models return {'out': ...}; export and time the tensor."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


class BertOut(torch.nn.Module):
    """BertModel with positional inputs and tensor outputs (what ONNX export needs)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, token_type_ids):
        o = self.m(input_ids=input_ids, attention_mask=attention_mask,
                   token_type_ids=token_type_ids, return_dict=True)
        return o.last_hidden_state, o.pooler_output


def make_model(name, attention="sdpa"):
    """The model in eval mode, FP32, on the CPU, with seeded random weights. `attention`
    picks BERT's attention implementation: 'sdpa' (PyTorch's fused kernels, for timing
    PyTorch) or 'eager' (plain MatMul/Softmax, which exports to standard ONNX ops)."""
    torch.manual_seed(0)
    import torchvision.models as tvm
    if name == "resnet50":
        m = tvm.resnet50(weights=None)
    elif name == "deeplabv3_resnet50":
        m = SegmentationOut(tvm.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, aux_loss=False))
    elif name == "lraspp_mobilenet_v3_large":
        m = SegmentationOut(tvm.segmentation.lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None))
    elif name == "bert_base":
        from transformers import BertConfig, BertModel
        cfg = BertConfig()
        cfg._attn_implementation = attention
        m = BertOut(BertModel(cfg, add_pooling_layer=True))
    else:
        raise SystemExit(f"unknown model {name!r}; models: {', '.join(MODELS)}")
    return m.eval()


def is_text(name):
    return name == "bert_base"


def example_inputs(name, batch, device="cpu", dtype=torch.float32, channels_last=False):
    """Seeded inputs: images uniform in [-1, 1]; BERT token ids in [0, 100), an all-ones
    attention mask and zero token types (what kiln bench generates for those names)."""
    shape, _ = MODELS[name]
    g = torch.Generator().manual_seed(1)
    if is_text(name):
        ids = torch.randint(0, 100, (batch,) + shape, generator=g)
        return tuple(t.to(device) for t in (ids, torch.ones_like(ids), torch.zeros_like(ids)))
    x = (torch.rand((batch,) + shape, generator=g) * 2 - 1).to(device=device, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return (x,)


def input_names(name):
    return ["input_ids", "attention_mask", "token_type_ids"] if is_text(name) else ["input"]


def output_names(name):
    return ["last_hidden_state", "pooler_output"] if is_text(name) else ["output"]


def export_onnx(name, batch, path, device=None):
    """Writes `name` at batch `batch` to `path`: ONNX opset 17, every dim fixed, FP32.
    Tracing runs on the GPU when there is one (a ResNet-50 batch of 256 is slow on CPUs)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    m = make_model(name, attention="eager").to(device)
    args = example_inputs(name, batch, device)
    kw = dict(input_names=input_names(name), output_names=output_names(name),
              opset_version=OPSET, do_constant_folding=True)
    with torch.no_grad():
        try:
            # The TorchScript exporter: no onnxscript dependency, standard ops at opset 17.
            torch.onnx.export(m, args, str(path), dynamo=False, **kw)
        except TypeError:  # a torch without the `dynamo` argument
            torch.onnx.export(m, args, str(path), **kw)
    del m
    if device == "cuda":
        torch.cuda.empty_cache()


def prepare_torch(name, variant, precision="fp16", attention="sdpa"):
    """The callable PyTorch peer: variant 'eager' or 'compile', on the GPU in `precision`,
    channels_last for the convolutional models."""
    dtype = DTYPES[precision]
    m = make_model(name, attention=attention).cuda().to(dtype)
    if not is_text(name):
        m = m.to(memory_format=torch.channels_last)
    if variant == "compile":
        # dynamic=False: one specialised graph per batch size, as kiln builds one per shape.
        return torch.compile(m, mode="reduce-overhead", dynamic=False)
    if variant != "eager":
        raise ValueError(f"unknown variant {variant!r}")
    return m


def time_torch(fn, name, batch, precision="fp16", warmup=10, min_iters=50, min_seconds=1.0):
    """Median CUDA-event time (ms) of one call of `fn`, after `warmup` calls; runs at least
    `min_iters` timed calls and at least `min_seconds`."""
    args = example_inputs(name, batch, "cuda", DTYPES[precision], channels_last=not is_text(name))
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn(*args)
        torch.cuda.synchronize()
        t_end = time.perf_counter() + min_seconds
        while len(times) < min_iters or time.perf_counter() < t_end:
            s = torch.cuda.Event(enable_timing=True)
            e = torch.cuda.Event(enable_timing=True)
            s.record()
            fn(*args)
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
    times.sort()
    n = len(times)
    return times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])


def run_peer(name, batch, variant, precision="fp16", fn=None):
    """One peer measurement as a result row (errors are recorded, not raised)."""
    row = dict(model=name, batch=batch, variant=f"{variant}-{precision}")
    try:
        t0 = time.perf_counter()
        if fn is None:  # not `fn or ...`: a compiled module's truth value calls len()
            fn = prepare_torch(name, variant, precision)
        ms = time_torch(fn, name, batch, precision, warmup=10 if variant == "eager" else 20)
        row.update(ms=ms, items_per_s=batch * 1000.0 / ms, setup_s=time.perf_counter() - t0)
    except Exception as ex:  # noqa: BLE001 - a failed peer must not stop the run
        row["error"] = f"{type(ex).__name__}: {str(ex)[:300]}"
    return row


def model_flops(name):
    """Floating-point operations of one item's forward pass (a multiply-add counts 2), by
    torch.utils.flop_counter on the CPU at batch 1: matmuls and convolutions, which bound
    the roofline. None when the counter is unavailable."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    m = make_model(name, attention="eager")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        m(*example_inputs(name, 1))
    return int(counter.get_total_flops())


# Dense FP16 tensor-core peak (no sparsity), FLOP/s, from NVIDIA's data sheets: H100 SXM5
# and H200 989.4 TFLOPS, H100 PCIe 756 TFLOPS, A100 312 TFLOPS.
FP16_PEAK = [("H200", 989.4e12), ("H100 PCIe", 756e12), ("H100", 989.4e12), ("A100", 312e12)]


def fp16_peak(gpu_name):
    for key, peak in FP16_PEAK:
        if key in (gpu_name or ""):
            return peak
    return None


def run_ort(onnx_path, name, batch, precision="fp16"):
    """ONNX Runtime on the GPU (CUDAExecutionProvider, FP32 model as exported; ORT has no
    FP16 switch for an FP32 model) as a result row; an 'error' row where this onnxruntime
    has no CUDA provider (the CPU-only wheel)."""
    row = dict(model=name, batch=batch, variant="onnxruntime-cuda-fp32")
    try:
        import onnxruntime as ort
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            row["error"] = "onnxruntime has no CUDAExecutionProvider here (CPU-only wheel)"
            return row
        sess = ort.InferenceSession(str(onnx_path), providers=["CUDAExecutionProvider"])
        feeds = {n: t.numpy() for n, t in zip(input_names(name), example_inputs(name, batch))}
        for _ in range(10):
            sess.run(None, feeds)
        times = []
        t_end = time.perf_counter() + 1.0
        while len(times) < 20 or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times.append((time.perf_counter() - t0) * 1000.0)
        times.sort()
        ms = times[len(times) // 2]
        row.update(ms=ms, items_per_s=batch * 1000.0 / ms)
    except Exception as ex:  # noqa: BLE001
        row["error"] = f"{type(ex).__name__}: {str(ex)[:300]}"
    return row


def environment():
    """What the timings were taken on."""
    env = dict(torch=torch.__version__, cuda=torch.version.cuda)
    if torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(), cudnn=torch.backends.cudnn.version())
    try:
        import torchvision
        env["torchvision"] = torchvision.__version__
        import transformers
        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    return env


def configure_torch():
    """PyTorch at its fastest: cuDNN autotuning, TF32 allowed for FP32 work."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--precision", default="fp16", choices=sorted(DTYPES))
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile(mode='reduce-overhead')")
    ap.add_argument("--json", help="write the rows to this file")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("peers.py needs a CUDA GPU")
    configure_torch()
    rows = []
    variants = ["eager"] + (["compile"] if a.compile else [])
    for name in a.models.split(","):
        _, batches = MODELS[name]
        for variant in variants:
            fn = prepare_torch(name, variant, a.precision)
            for bs in batches:
                rows.append(run_peer(name, bs, variant, a.precision, fn=fn))
                print(json.dumps(rows[-1]), flush=True)
            del fn
            torch.cuda.empty_cache()
    print(f"\n{'model':28} {'variant':14} {'batch':>5} {'ms':>9} {'items/s':>10}")
    for r in rows:
        ms = f"{r['ms']:.3f}" if "ms" in r else "-"
        per_s = f"{r['items_per_s']:.1f}" if "ms" in r else r["error"][:40]
        print(f"{r['model']:28} {r['variant']:14} {r['batch']:>5} {ms:>9} {per_s:>10}")
    env = environment()
    print(env)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(environment=env, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
