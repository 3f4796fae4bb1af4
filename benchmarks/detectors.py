"""Person detectors: time per frame against one HRNet-W32 crop, and person recall where weights are present.

    .venv/bin/python benchmarks/detectors.py                       # CPU, 768x576 frames (vtest.avi's size)
    .venv/bin/python benchmarks/detectors.py --skip-accurate --json detectors.json

Speed: every detector runs with seeded random weights (the cost does not
depend on the weight values), on a real photo resized to `--size`, as the
median of `--repeats` calls after a warm-up. In the same run one W32 256x192
crop's network time is measured (a batch of 8 crops, no flip test, divided by
8), so the ratio `detector ms / crop ms` does not depend on how fast the
machine is today. Target: the CPU default costs at most a third of a crop.

Recall: person recall at IoU 0.5 of each detector's boxes (score >= 0.5)
against the ground-truth boxes of the COCO and PoseTrack images in
`tests/data`. It needs the real COCO weights (torchvision's file in the torch
hub cache, as `main.py track` downloads it); where they are absent the row
says so and gives no number (random weights would only measure noise).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.types import Frame  # noqa: E402
from detector import GroundTruthDetector  # noqa: E402
from pipeline.capture import list_images  # noqa: E402
from pose.estimator import PoseEstimator  # noqa: E402

DATA = ROOT / "tests" / "data"
PHOTO = DATA / "coco_mini" / "000000196141.jpg"
RECALL_SETS = (  # (annotation file, image root)
    (DATA / "coco_mini" / "test_coco.json", DATA / "coco_mini"),
    (DATA / "posetrack18_mini" / "annotations" / "test_posetrack18_val.json", DATA / "posetrack18_mini"),
)
DETECTORS = ("ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn",
             "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn_v2")
ACCURATE = "fasterrcnn_resnet50_fpn_v2"


def median_s(function, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def crop_network_s(device: str, repeats: int) -> float:
    """Seconds of W32 256x192 network time per crop (batch of 8, no flip)."""
    estimator = PoseEstimator.from_config("coco/w32_256x192", weights=None, device=device, flip_test=False,
                                          batch_size=8)
    crops = np.random.default_rng(0).standard_normal((8, 3, 256, 192)).astype(np.float32)
    return median_s(lambda: estimator.infer_heatmaps(crops), repeats) / 8


def detector_s(name: str, device: str, frame: Frame, repeats: int) -> float:
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    from detector.torchvision_detector import build_detector  # noqa: PLC0415 - loads torch

    torch.manual_seed(0)
    detector = build_detector(name, weights="random", device=device)
    detector.cpu_threads = torch.get_num_threads()  # alone, as the crop is timed: all cores (the pipeline gives it half)
    return median_s(lambda: detector([frame]), repeats)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / (area(box) + area(boxes) - inter + 1e-9)


def matched_people(truth: np.ndarray, found: np.ndarray, iou_threshold: float = 0.5) -> int:
    """Ground-truth boxes matched one-to-one by found boxes at IoU >= threshold (greedy, best IoU first)."""
    if len(truth) == 0 or len(found) == 0:
        return 0
    ious = np.stack([_iou(box, found) for box in truth])
    matched = 0
    while ious.size and ious.max() >= iou_threshold:
        row, column = np.unravel_index(int(ious.argmax()), ious.shape)
        matched += 1
        ious[row, :] = -1
        ious[:, column] = -1
    return matched


def recall(name: str, device: str) -> dict:
    """{"recall", "people", "images"} with the real weights, or {"absent": path} without them."""
    import torchvision  # noqa: PLC0415 - loads torch

    from detector.torchvision_detector import build_detector, hub_checkpoint_path  # noqa: PLC0415 - loads torch

    weights_path = hub_checkpoint_path(torchvision.models.get_model_weights(name).DEFAULT.url)
    if not weights_path.is_file():
        return {"absent": str(weights_path)}
    detector = build_detector(name, device=device, offline=True)
    people = found = images = 0
    for annotation, image_root in RECALL_SETS:
        truth = GroundTruthDetector(annotation, official_cleaning=False)
        document = json.loads(annotation.read_text())
        for image in document["images"]:
            path = image_root / image["file_name"]
            if not path.is_file():
                candidates = [p for p in list_images(image_root) if p.name == Path(image["file_name"]).name]
                if not candidates:
                    continue
                path = candidates[0]
            frame = Frame(0, 0.0, cv2.imread(str(path)), str(path), path=str(path))
            truth_boxes = truth([frame])[0].boxes
            found_boxes = detector([frame])[0].boxes
            people += len(truth_boxes)
            found += matched_people(truth_boxes, found_boxes)
            images += 1
    return {"recall": found / people if people else None, "people": people, "images": images}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, nargs=2, default=(768, 576), metavar=("W", "H"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-accurate", action="store_true", help=f"leave out {ACCURATE} (seconds per frame on a CPU)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    from detector.torchvision_detector import resolve_detector_name  # noqa: PLC0415 - loads torch

    default = resolve_detector_name("auto", args.device)
    image = cv2.resize(cv2.imread(str(PHOTO)), tuple(args.size), interpolation=cv2.INTER_AREA)
    frame = Frame(0, 0.0, image, "photo")
    crop_s = crop_network_s(args.device, args.repeats)
    rows = []
    for name in DETECTORS:
        if args.skip_accurate and name == ACCURATE:
            continue
        seconds = detector_s(name, args.device, frame, max(2, args.repeats if name != ACCURATE else 2))
        rows.append({"detector": name, "default": name == default, "ms_per_frame": 1000 * seconds,
                     "crops_equivalent": seconds / crop_s, **recall(name, args.device)})
    print(f"# {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, frame {args.size[0]}x"
          f"{args.size[1]}; one W32 256x192 crop (batch 8, no flip): {1000 * crop_s:.1f} ms")
    print(f"{'detector':<40} {'ms/frame':>9} {'x one crop':>10} {'recall@0.5':>11}")
    for row in rows:
        marker = " (default)" if row["default"] else ""
        recall_text = f"{row['recall']:.3f}" if row.get("recall") is not None else "weights absent"
        print(f"{row['detector'] + marker:<40} {row['ms_per_frame']:>9.1f} {row['crops_equivalent']:>10.2f} "
              f"{recall_text:>11}")
    absent = [row for row in rows if "absent" in row]
    if absent:
        print("recall not measured for detectors without their COCO weights (random weights would measure noise); "
              "put torchvision's files here to measure it: " + ", ".join(row["absent"] for row in absent))
    target = next(row for row in rows if row["default"])
    print(f"default detector {target['detector']}: {target['crops_equivalent']:.2f} crops "
          f"({'meets' if target['crops_equivalent'] <= 1 / 3 else 'MISSES'} the <= 1/3 crop target)")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "frame_size": list(args.size),
                                               "crop_ms": 1000 * crop_s, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
