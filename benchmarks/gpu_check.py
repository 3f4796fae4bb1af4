"""GPU check: pose crops/s by precision and batch, and end-to-end fps at 720p, in one JSON (under 5 minutes).

    python benchmarks/gpu_check.py --json gpu_check.json          # on a CUDA machine with the project installed
    python benchmarks/gpu_check.py --dry-run --json /tmp/dry.json  # anywhere: tiny model, CPU, seconds

Measures, with seeded random weights (cost does not depend on their values):

1. HRNet-W32 256x192 network crops/s at batch 1, 8 and 64 for
   - fp32 with TF32 off (the exact reference setting),
   - fp16 (half-precision weights and inputs),
   - compile (torch.compile of the fp32 model, channels_last; the first call's
     compile time is reported separately as `compile_s`);
2. end-to-end `track` pipeline fps on synthetic 1280x720 frames with 1, 8 and
   16 people: the accurate detector (fasterrcnn_resnet50_fpn_v2) runs on every
   frame for its real cost, while the pose stage gets exactly that many boxes
   (random weights find no real people), the W32 estimator with the flip test,
   `tracker.PoseTracker`, no sinks.

`--dry-run` runs the same code on the CPU with the tiny test model, small
batches, a small frame and SSDlite, so that the script is exercised by the
tests and does not rot before a GPU is at hand; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pose  # noqa: E402
from core.types import Detections, Frame  # noqa: E402
from pipeline.models import default_batch_size  # noqa: E402
from pipeline.pipeline import Pipeline  # noqa: E402
from pose.estimator import PoseEstimator  # noqa: E402
from pose.runtime import disable_tf32  # noqa: E402
from tracker import PoseTracker  # noqa: E402

TINY_CONFIG = ROOT / "tests" / "data" / "hrnet_reference" / "dev_tiny.yaml"


def plan(dry_run: bool) -> dict:
    """What to measure: the real plan, or a seconds-long CPU rehearsal of it."""
    if dry_run:
        return {"device": "cpu", "config": str(TINY_CONFIG), "batches": [1, 2], "repeats": 2, "warmup": 1,
                "precisions": ["fp32", "fp16", "compile"], "compile_backend": "eager",
                "detector": "ssdlite320_mobilenet_v3_large", "frame_size": (160, 90), "people": [1, 2],
                "frames": 3}
    return {"device": "cuda", "config": "coco/w32_256x192", "batches": [1, 8, 64], "repeats": 20, "warmup": 3,
            "precisions": ["fp32", "fp16", "compile"], "compile_backend": "inductor",
            "detector": "fasterrcnn_resnet50_fpn_v2", "frame_size": (1280, 720), "people": [1, 8, 16],
            "frames": 40}


def _synchronize(device: str) -> None:
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _seconds_per_call(function, device: str, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def pose_rows(settings: dict) -> list[dict]:
    """One row per (precision, batch): crops/s of the network alone, or why it was skipped."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    device = settings["device"]
    disable_tf32()
    experiment = pose.load_config(settings["config"])
    height, width = experiment.model.image_size[1], experiment.model.image_size[0]
    rows = []
    for precision in settings["precisions"]:
        if precision == "fp16" and not device.startswith("cuda"):
            rows.append({"precision": precision, "skipped": "fp16 needs a CUDA device"})
            continue
        torch.manual_seed(0)
        model = pose.build_model(experiment).eval().to(device)
        dtype = torch.float16 if precision == "fp16" else torch.float32
        model = model.to(dtype)
        compile_s = None
        if precision == "compile":
            model = model.to(memory_format=torch.channels_last)
            network = torch.compile(model, backend=settings["compile_backend"], dynamic=False)
        else:
            network = model
        for batch in settings["batches"]:
            crops = torch.randn(batch, 3, height, width, device=device, dtype=dtype)
            if precision == "compile":
                crops = crops.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                if precision == "compile":
                    started = time.perf_counter()
                    network(crops)  # compiles for this shape
                    _synchronize(device)
                    compile_s = time.perf_counter() - started
                seconds = _seconds_per_call(lambda: network(crops), device, settings["repeats"], settings["warmup"])
            rows.append({"precision": precision, "batch": batch, "ms_per_call": 1000 * seconds,
                         "crops_per_s": batch / seconds, **({"compile_s": compile_s} if compile_s else {})})
        del network, model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


class CountedDetector:
    """Runs a real detector for its cost, then returns exactly `people` boxes (random weights find nobody)."""

    def __init__(self, detector, people: int, width: int, height: int) -> None:
        self.detector = detector
        self.device = getattr(detector, "device", None)  # the pipeline's CPU policy looks at it
        rng = np.random.default_rng(people)
        box_h = rng.uniform(0.3, 0.8, people) * height
        box_w = box_h * rng.uniform(0.3, 0.5, people)
        x1 = rng.uniform(0, width - box_w)
        y1 = rng.uniform(0, height - box_h)
        self.boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1).astype(np.float32)

    def __call__(self, frames):
        self.detector(frames)
        return [Detections(self.boxes, np.full(len(self.boxes), 0.9, np.float32)) for _ in frames]


class SyntheticFrames:
    """`count` noise frames of one size, as a file source (no decoding cost)."""

    live = False

    def __init__(self, count: int, width: int, height: int) -> None:
        self.name, self.fps, self.last_read_s = f"synthetic {width}x{height}", 30.0, 0.0
        self._image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        self._count, self._next = count, 0

    def read(self, timeout_s=None):
        if self._next >= self._count:
            return None
        self._next += 1
        return Frame(self._next - 1, (self._next - 1) / self.fps, self._image, self.name)

    def close(self) -> None:
        self._count = 0


def end_to_end_rows(settings: dict) -> list[dict]:
    """Pipeline fps with the settings' detector on every frame and a fixed number of people."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    from detector.torchvision_detector import build_detector  # noqa: PLC0415 - loads torch

    device = settings["device"]
    torch.manual_seed(0)
    estimator = PoseEstimator.from_config(settings["config"], weights=None, device=device,
                                          batch_size=default_batch_size(device))
    detector = build_detector(settings["detector"], weights="random", device=device)
    width, height = settings["frame_size"]
    rows = []
    for people in settings["people"]:
        counted = CountedDetector(detector, people, width, height)
        warm = Pipeline(SyntheticFrames(2, width, height), counted, estimator, PoseTracker())
        list(warm.run())
        pipeline = Pipeline(SyntheticFrames(settings["frames"], width, height), counted, estimator, PoseTracker())
        started = time.perf_counter()
        results = list(pipeline.run())
        _synchronize(device)
        seconds = time.perf_counter() - started
        stage_ms = {name: 1000 * statistics.fmean(r.timings_s.get(name, 0.0) for r in results)
                    for name in ("detection", "pose", "tracking")}
        rows.append({"people": people, "frames": len(results), "fps": len(results) / seconds,
                     "stage_ms_per_frame": stage_ms})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU, seconds (for the tests)")
    parser.add_argument("--json", metavar="PATH", default="gpu_check.json", help="where the results go")
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    settings = plan(args.dry_run)
    if settings["device"] == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run to rehearse on the CPU", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report = {
        "dry_run": args.dry_run,
        "device": torch.cuda.get_device_name(0) if settings["device"] == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "pose": pose_rows(settings),
    }
    report["end_to_end"] = end_to_end_rows(settings)
    report["seconds"] = time.perf_counter() - started
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"# {report['device']}, torch {report['torch']}{' (dry run: numbers mean nothing)' if args.dry_run else ''}")
    print(f"{'precision':<9} {'batch':>5} {'crops/s':>9}")
    for row in report["pose"]:
        if "skipped" in row:
            print(f"{row['precision']:<9} {'-':>5} {'skipped: ' + row['skipped']}")
        else:
            print(f"{row['precision']:<9} {row['batch']:>5} {row['crops_per_s']:>9.1f}")
    print(f"end to end, {settings['frame_size'][0]}x{settings['frame_size'][1]}, detector {settings['detector']}:")
    for row in report["end_to_end"]:
        print(f"  {row['people']:>3} people: {row['fps']:.2f} fps")
    print(f"{report['seconds']:.0f} s; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
