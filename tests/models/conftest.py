"""pytest setup for the real-model tests: one marker per model (`pytest -m resnet50`) and a
summary table of errors and timings at the end of the run."""
import export_models


def pytest_configure(config):
    for name in export_models.MODELS:
        config.addinivalue_line("markers", f"{name}: real-model test of {name}")
    config.addinivalue_line("markers", "text_detect: examples/text_detect vs rapidocr")
    config.addinivalue_line("markers", "dynamic: one dynamic plan per model, run at several "
                            "input shapes (export_models.DYNAMIC_MODELS)")


def pytest_terminal_summary(terminalreporter):
    rows = []
    for outcome in ("passed", "failed"):
        for rep in terminalreporter.stats.get(outcome, []):
            props = dict(getattr(rep, "user_properties", []))
            if rep.when == "call" and "model" in props:
                rows.append((props, outcome))
    if not rows:
        return
    tr = terminalreporter
    tr.section("kiln vs ONNX Runtime (relative L2 = ||kiln-ort|| / ||ort||)")
    tr.write_line(f"{'model':28} {'output':22} {'rel L2':>10} {'max abs':>10} "
                  f"{'export':>8} {'build':>8} {'run':>8} {'ort':>8}  result")
    for props, outcome in rows:
        t = props.get("times_ms", {})
        ms = lambda k: f"{t[k]:.0f}" if k in t else "-"
        outs = props.get("outputs") or [("-", None, None)]
        for i, (oname, rel, mx) in enumerate(outs):
            head = props["model"] if i == 0 else ""
            times = (f"{ms('export'):>8} {ms('kiln build'):>8} {ms('kiln run'):>8} {ms('ort'):>8}"
                     if i == 0 else " " * 35)
            rel_s = f"{rel:.2e}" if rel is not None else "-"
            mx_s = f"{mx:.2e}" if mx is not None else "-"
            tr.write_line(f"{head:28} {oname[:22]:22} {rel_s:>10} {mx_s:>10} {times}  "
                          f"{outcome if i == 0 else ''}")
    tr.write_line("times in ms: export (0 when cached), kiln build, kiln run (CLI wall time "
                  "incl. plan load), ort (InferenceSession.run only)")
