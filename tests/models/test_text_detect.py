"""examples/text_detect (kiln) against rapidocr_onnxruntime's own TextDetector (ONNX Runtime)
on real images at the same detector input size and preprocessing: the same text boxes must
come out. Both run the PP-OCRv4 detector shipped in the rapidocr wheel.

The two pipelines share the algorithm but not the code: text_detect groups pixels by
connected components and unclips analytically, rapidocr uses cv2.findContours and
pyclipper, so corners may differ by a pixel or two; scores are means over the same pixels.

    TEXT_DETECT_BIN=build/text_detect pytest tests/models -m text_detect -s
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

KILN_BIN = os.environ.get("KILN_BIN", "/work/main/build-models/kiln")
TEXT_DETECT_BIN = os.environ.get("TEXT_DETECT_BIN",
                                 os.path.join(os.path.dirname(KILN_BIN), "text_detect"))
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

#: (image in skimage/data, limit_type, limit_side_len, (mean, std)): page.png with PaddleOCR's
#: defaults; text.png (a photo) upscaled with rapidocr's own normalisation.
CASES = {
    "page": ("page.png", "max", 960, IMAGENET),
    "text": ("text.png", "min", 480, ([0.5] * 3, [0.5] * 3)),
}


def rapidocr_boxes(image: Path, limit_type, limit_side_len, mean, std):
    import yaml
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    from rapidocr_onnxruntime.utils import LoadImage
    root = Path(rapidocr_onnxruntime.__file__).parent
    cfg = yaml.safe_load(open(root / "config.yaml"))["Det"]
    cfg.update(model_path=str(root / cfg["model_path"]), limit_type=limit_type,
               limit_side_len=limit_side_len, mean=mean, std=std)
    det = TextDetector(cfg)
    img = LoadImage()(str(image))
    det.preprocess_op = det.get_preprocess(max(img.shape[:2]))
    x = det.preprocess_op(img)
    prob = det.infer(x)[0]
    boxes, scores = det.postprocess_op(prob, img.shape[:2])
    # TextDetector.__call__ drops slivers without returning scores; keep them paired.
    kept = [(det.filter_tag_det_res(b[None].copy(), img.shape[:2]), s)
            for b, s in zip(boxes, scores)]
    return [(b[0], s) for b, s in kept if len(b)], x.shape


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


@pytest.mark.text_detect
@pytest.mark.parametrize("case", list(CASES))
def test_text_detect_matches_rapidocr(case, tmp_path):
    import rapidocr_onnxruntime
    import skimage
    if not os.access(TEXT_DETECT_BIN, os.X_OK):
        pytest.fail(f"{TEXT_DETECT_BIN} not found; build it (ninja text_detect) or set TEXT_DETECT_BIN")
    name, limit_type, limit, (mean, std) = CASES[case]
    image = Path(skimage.__file__).parent / "data" / name
    model = Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"

    ref, ref_shape = rapidocr_boxes(image, limit_type, limit, mean, std)
    assert ref, "rapidocr finds no text; the case would test nothing"

    out_json = tmp_path / "boxes.json"
    cmd = [TEXT_DETECT_BIN, str(model), str(image), "-o", str(tmp_path / "overlay.png"),
           "--json", str(out_json), "--limit-type", limit_type, "--limit-side-len", str(limit),
           "--mean", *map(str, mean), "--std", *map(str, std)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print(p.stdout)
    assert p.returncode == 0, f"text_detect failed:\n{p.stdout}\n{p.stderr}"
    got = json.loads(out_json.read_text())
    assert got["input_shape"] == list(ref_shape)
    assert (tmp_path / "overlay.png").stat().st_size > 0

    ref_rects = [(b[:, 0].min(), b[:, 1].min(), b[:, 0].max(), b[:, 1].max(), s) for b, s in ref]
    got_rects = [(*b["bbox"], b["score"]) for b in got["boxes"]]
    print("rapidocr:", [tuple(round(float(v), 2) for v in r) for r in ref_rects])
    assert len(got_rects) == len(ref_rects), f"{len(got_rects)} boxes, rapidocr finds {len(ref_rects)}"
    unmatched = list(got_rects)
    for r in ref_rects:
        best = max(unmatched, key=lambda g: iou(g[:4], r[:4]))
        assert iou(best[:4], r[:4]) > 0.85, f"no box like rapidocr's {r[:4]}; closest {best[:4]}"
        assert np.abs(np.subtract(best[:4], r[:4])).max() <= 3, f"{best[:4]} vs rapidocr {r[:4]}"
        assert abs(best[4] - r[4]) < 0.02, f"score {best[4]:.4f} vs rapidocr {r[4]:.4f}"
        unmatched.remove(best)
