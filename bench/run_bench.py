#!/usr/bin/env python3
"""kiln against PyTorch on the same GPU, in one run.

For each model and batch size (peers.MODELS): export the ONNX model (opset 17, fixed
shapes), run `kiln bench model.onnx --backend cuda --fp16 --json ...` on it, time the
PyTorch peers on the same shapes in the same run, then print a Markdown table and write
every figure to OUT/results.json. Runs on the GPU machine with its python3 (torch,
torchvision, transformers, onnx); no network needed (random weights). See docs/bench.md.

  python3 bench/run_bench.py --kiln dist/bin/kiln --out bench-out [--compile] [--ort]
      [--models resnet50,bert_base] [--batches 1,32] [--precision fp16] [--profile 20]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (next to this file)

KILN_PRECISION_FLAGS = {"fp32": [], "fp16": ["--fp16"], "bf16": ["--bf16"]}


def torch_library_dirs():
    """cuDNN / cuBLAS directories of the installed torch wheels (nvidia-* packages). On the
    GPU machine these are the versions kiln was compiled against, newer than the system's."""
    import torch
    site = Path(torch.__file__).resolve().parent.parent / "nvidia"
    return [str(d) for d in sorted(site.glob("*/lib")) if d.is_dir()]


def kiln_env(a):
    env = dict(os.environ)
    dirs = list(a.lib_dir) + ([] if a.no_torch_libs else torch_library_dirs())
    if dirs:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(dirs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(
            os.pathsep)
    return env


def run_kiln(a, onnx_path, json_path, log_path):
    """`kiln bench` on one model; returns its JSON report, or a dict with 'error'."""
    cmd = [a.kiln, "bench", str(onnx_path), "--backend", "cuda",
           *KILN_PRECISION_FLAGS[a.precision], "--json", str(json_path),
           "--warmup-ms", str(a.warmup_ms), "--duration-s", str(a.duration_s),
           "--streams", str(a.streams)]
    if a.no_cuda_graph:
        cmd.append("--no-cuda-graph")
    if a.profile:
        cmd += ["--profile", str(a.profile)]
    cmd += a.kiln_arg
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=kiln_env(a),
                           timeout=a.kiln_timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"kiln bench timed out after {a.kiln_timeout} s", cmd=" ".join(cmd))
    log_path.write_text(f"$ {' '.join(cmd)}\n# exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-3:]
        return dict(error=f"exit {p.returncode}: " + " | ".join(tail), cmd=" ".join(cmd))
    report = json.loads(Path(json_path).read_text())
    report["wall_s_total"] = time.perf_counter() - t0
    return report


def kiln_summary(report):
    """The figures the table shows, from a kiln bench JSON report."""
    if "error" in report:
        return dict(error=report["error"])
    t = report["times_ms"]
    if not t.get("gpu_compute"):
        return dict(error=f"no GPU times: kiln ran on the {report['engine']['backend']} backend")

    def median(key):
        return t[key]["median"] if t.get(key) else None

    return dict(ms=median("gpu_compute"), latency_ms=median("latency"),
                enqueue_ms=median("enqueue"), items_per_s=report["throughput"]["items_per_s"],
                load_ms=report["engine"]["load_ms"], warnings=report["warnings"])


def markdown(rows, precision, with_compile, with_ort):
    head = ["model", "batch", "precision", "kiln ms", "kiln items/s", "eager ms", "eager/kiln"]
    if with_compile:
        head += ["compile ms", "compile/kiln"]
    if with_ort:
        head += ["ORT ms", "ORT/kiln"]
    head += ["kiln % FP16 peak", "kiln e2e items/s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def ms(r):
        return f"{r['ms']:.3f}" if r and "ms" in r else ("error" if r else "-")

    def ratio(peer, k):
        if peer and "ms" in peer and "ms" in k:
            return f"{peer['ms'] / k['ms']:.2f}x"
        return "-"

    for r in rows:
        k, e, c = r["kiln"], r["peers"].get("eager"), r["peers"].get("compile")
        cells = [r["model"], str(r["batch"]), precision, ms(k),
                 f"{r['batch'] * 1000.0 / k['ms']:.1f}" if "ms" in k else "-", ms(e), ratio(e, k)]
        if with_compile:
            cells += [ms(c), ratio(c, k)]
        if with_ort:
            o = r["peers"].get("onnxruntime")
            cells += [ms(o) if o and "ms" in o else "n/a", ratio(o, k)]
        cells += [f"{k['roofline_pct']:.1f}%" if k.get("roofline_pct") else "-",
                  f"{k['items_per_s']:.1f}" if "ms" in k else "-"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="kiln vs PyTorch on the same GPU")
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN", "build/kiln"),
                    help="path to the kiln binary (default: $KILN_BIN or build/kiln)")
    ap.add_argument("--out", default="bench-out", help="directory for models, logs and JSON")
    ap.add_argument("--models", default=",".join(peers.MODELS),
                    help="comma-separated subset of: " + ", ".join(peers.MODELS) +
                         "; NAME:B1:B2 picks that model's batch sizes")
    ap.add_argument("--batches", help="comma-separated batch sizes (default: each model's own)")
    ap.add_argument("--precision", default="fp16", choices=sorted(KILN_PRECISION_FLAGS))
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile(mode='reduce-overhead') (minutes per model)")
    ap.add_argument("--ort", action="store_true",
                    help="also time ONNX Runtime's CUDA provider on the same ONNX file (where "
                         "the installed onnxruntime has one)")
    ap.add_argument("--profile", type=int, default=0,
                    help="kiln bench --profile N: per-layer times in OUT/kiln/*.json")
    ap.add_argument("--skip-peers", action="store_true", help="only run kiln")
    ap.add_argument("--reuse-onnx", action="store_true",
                    help="keep ONNX files already in OUT/onnx instead of re-exporting")
    ap.add_argument("--duration-s", type=float, default=3.0, help="kiln bench --duration-s")
    ap.add_argument("--warmup-ms", type=float, default=200.0, help="kiln bench --warmup-ms")
    ap.add_argument("--streams", type=int, default=1, help="kiln bench --streams")
    ap.add_argument("--no-cuda-graph", action="store_true", help="kiln bench --no-cuda-graph")
    ap.add_argument("--kiln-arg", action="append", default=[],
                    help="extra argument for kiln bench (e.g. --kiln-arg=--no-nhwc); repeatable")
    ap.add_argument("--kiln-timeout", type=int, default=900,
                    help="seconds one kiln bench (build included) may take")
    ap.add_argument("--lib-dir", action="append", default=[],
                    help="prepend to kiln's LD_LIBRARY_PATH; repeatable")
    ap.add_argument("--no-torch-libs", action="store_true",
                    help="do not prepend the torch wheels' nvidia/*/lib to LD_LIBRARY_PATH")
    a = ap.parse_args()

    import torch
    if not torch.cuda.is_available():
        sys.exit("run_bench.py needs a CUDA GPU")
    if not os.access(a.kiln, os.X_OK):
        sys.exit(f"kiln binary not found at {a.kiln} (use --kiln)")
    peers.configure_torch()
    out = Path(a.out)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    (out / "kiln").mkdir(parents=True, exist_ok=True)
    variants = [] if a.skip_peers else ["eager"] + (["compile"] if a.compile else [])
    results = dict(environment=peers.environment(), precision=a.precision,
                   kiln=os.path.abspath(a.kiln), rows=[])
    results_path = out / "results.json"

    peak = peers.fp16_peak(results["environment"].get("gpu"))
    for item in a.models.split(","):
        name, *own = item.split(":")  # "resnet50:1:256": that model at batches 1 and 256
        if name not in peers.MODELS:
            sys.exit(f"unknown model {name!r}; models: {', '.join(peers.MODELS)}")
        _, batches = peers.MODELS[name]
        flops = peers.model_flops(name)
        if a.batches:
            batches = [int(b) for b in a.batches.split(",")]
        if own:
            batches = [int(b) for b in own]
        fns = {}
        for bs in batches:
            stem = f"{name}_bs{bs}"
            onnx_path = out / "onnx" / f"{stem}.onnx"
            row = dict(model=name, batch=bs, precision=a.precision, peers={})
            if not (a.reuse_onnx and onnx_path.exists()):
                t0 = time.perf_counter()
                peers.export_onnx(name, bs, onnx_path)
                row["export_s"] = time.perf_counter() - t0
            report = run_kiln(a, onnx_path, out / "kiln" / f"{stem}.json",
                              out / "kiln" / f"{stem}.log")
            row["kiln"] = kiln_summary(report)
            row["kiln_report"] = report
            if flops and "ms" in row["kiln"]:
                row["flops_per_item"] = flops
                if a.precision == "fp16" and peak:
                    achieved = flops * bs / (row["kiln"]["ms"] / 1000.0)
                    row["kiln"]["roofline_pct"] = 100.0 * achieved / peak
            if a.ort and not a.skip_peers:
                row["peers"]["onnxruntime"] = {
                    k: v for k, v in peers.run_ort(onnx_path, name, bs, a.precision).items()
                    if k in ("ms", "items_per_s", "error")}
            for v in variants:
                if v not in fns:
                    fns[v] = peers.prepare_torch(name, v, a.precision)
                peer = peers.run_peer(name, bs, v, a.precision, fn=fns[v])
                row["peers"][v] = {k: peer[k] for k in ("ms", "items_per_s", "setup_s", "error")
                                   if k in peer}
            results["rows"].append(row)
            print(json.dumps({k: row[k] for k in ("model", "batch", "kiln", "peers")}), flush=True)
            results_path.write_text(json.dumps(results, indent=1))
        fns.clear()
        torch.cuda.empty_cache()

    table = markdown(results["rows"], a.precision, "compile" in variants, a.ort and not a.skip_peers)
    env = results["environment"]
    header = (f"GPU: {env.get('gpu', '?')}; torch {env.get('torch')}, cuDNN {env.get('cudnn')}; "
              f"kiln ms = kiln bench GPU compute median; peer ms = CUDA-event median of one "
              f"forward; e2e = kiln throughput with H2D/D2H copies; % FP16 peak = model FLOPs "
              f"(torch.utils.flop_counter) / kiln ms / dense FP16 tensor-core peak")
    print("\n" + header + "\n\n" + table)
    (out / "results.md").write_text(header + "\n\n" + table + "\n")
    results_path.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {results_path} and {out / 'results.md'}")


if __name__ == "__main__":
    main()
