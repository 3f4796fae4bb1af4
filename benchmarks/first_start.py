"""How long the default `track` makes a user wait: first start on a fresh cache, and later starts, against eager fp32.

    .venv/bin/python benchmarks/first_start.py /path/to/vtest.avi --json first_start.json

Runs `main.py track VIDEO --max-frames 1` as a user would, in a fresh process
each time, with HRNet-W32 256x192 (seeded random weights, BatchNorm statistics
from real crops) and 3 person boxes per frame from a detection file (so that
the detector's weights, which cannot be downloaded here, do not matter):

1. `--backend torch` (eager fp32): the baseline;
2. `--backend auto` on an empty backend cache: the first start (the target:
   at most 30 s more than eager before the first frame is written);
3. the background build run to its end in this process (what a first run
   long enough does), timed: when the fast backend would take over;
4. `--backend auto` again, now with the cache: later starts (the target: at
   most 3 s more model setup than eager).

Each `track` row is the median of `--repeats` runs of the whole command
(process start to exit, one frame). Reports seconds and the differences to eager.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # after ROOT: benchmarks/pipeline.py must not hide the package

from common import realistic_model  # noqa: E402

CONFIG = "coco/w32_256x192"


def detection_file(video: Path, path: Path, people: int = 3) -> Path:
    """A COCO-results file with `people` person-sized boxes on every frame of `video` (image id = frame index)."""
    capture = cv2.VideoCapture(str(video))
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    box_w, box_h = width / (people + 1) / 1.5, height / 2
    boxes = [[(i + 0.5) * width / (people + 1), height / 4, box_w, box_h] for i in range(people)]
    path.write_text(json.dumps([{"image_id": index, "category_id": 1, "bbox": box, "score": 0.9}
                                for index in range(frames) for box in boxes]))
    return path


def track_seconds(video: Path, weights: Path, detections: Path, backend: str, cache: Path, out: Path) -> float:
    """Wall seconds of one `main.py track VIDEO --max-frames 1` in a fresh process."""
    command = [sys.executable, str(ROOT / "main.py"), "track", str(video), "--out", str(out), "--overwrite",
               "--formats", "json", "--max-frames", "1", "--det-file", str(detections), "--det-image-key", "index",
               "--pose-config", CONFIG, "--pose-weights", str(weights), "--device", "cpu", "--offline",
               "--no-progress", "--backend", backend]
    environment = dict(os.environ, HRTRACK_CACHE=str(cache))
    environment.pop("HRTRACK_BACKEND", None)
    started = time.perf_counter()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"track failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return seconds


def settle_in_process(weights: Path, cache: Path) -> dict:
    """Run auto's background build to its end, as a long first run would; (seconds, chosen backend)."""
    os.environ["HRTRACK_CACHE"] = str(cache)
    from pose.estimator import PoseEstimator  # noqa: PLC0415 - loads torch

    started = time.perf_counter()
    estimator = PoseEstimator.from_config(CONFIG, weights=weights, device="cpu", flip_test=False, batch_size=8,
                                          backend="auto")
    estimator.runtime.settled()
    described = estimator.describe_backend()
    estimator.close()
    return {"seconds": time.perf_counter() - started, "backend": described["backend"],
            "reason": described.get("reason", "")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path, help="vtest.avi (or any video)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per track row (median; default 3)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        parser.error(f"video not found: {args.video}")
    import torch  # noqa: PLC0415 - loads torch

    with tempfile.TemporaryDirectory(prefix="hrtrack-first-start-") as scratch:
        scratch = Path(scratch)
        _, model, _ = realistic_model(CONFIG)
        weights = scratch / "w32.pth"
        torch.save(model.state_dict(), weights)
        detections = detection_file(args.video, scratch / "detections.json")
        out = scratch / "out"
        eager = statistics.median(track_seconds(args.video, weights, detections, "torch", scratch / "cache-eager", out)
                                  for _ in range(args.repeats))
        first = statistics.median(track_seconds(args.video, weights, detections, "auto", scratch / f"cache-fresh-{i}", out)
                                  for i in range(args.repeats))
        cache = scratch / "cache"
        build = settle_in_process(weights, cache)
        later = statistics.median(track_seconds(args.video, weights, detections, "auto", cache, out)
                                  for _ in range(args.repeats))
    report = {"video": str(args.video), "config": CONFIG, "repeats": args.repeats,
              "eager_track_s": eager, "auto_first_start_track_s": first, "auto_later_start_track_s": later,
              "first_start_minus_eager_s": first - eager, "later_start_minus_eager_s": later - eager,
              "background_build": build}
    print(f"track --max-frames 1, whole command (median of {args.repeats}): eager {eager:.1f} s; auto, fresh cache "
          f"{first:.1f} s ({first - eager:+.1f} s; target <= +30); auto, cached {later:.1f} s ({later - eager:+.1f} s; "
          f"target <= +3)")
    print(f"background build to the end: {build['seconds']:.0f} s -> {build['backend']} ({build['reason']})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
