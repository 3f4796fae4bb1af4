"""End-to-end `track` speed on a real video: fps against the number of people, normalised by this run's conv ceiling.

    .venv/bin/python benchmarks/end_to_end.py /path/to/vtest.avi               # 1 3 8 16 people, detect every 1 and 5
    .venv/bin/python benchmarks/end_to_end.py VIDEO --people 1 8 --frames 10 --json e2e.json

The video: OpenCV's sample `vtest.avi` (768x576, 795 frames; `samples/data/`
in the OpenCV sources, Apache-2.0/BSD-3-Clause). At 8 MB it is not copied
into the project; give its path (the project's shared data folder has it).

What runs is the pipeline `track` builds with its defaults: HRNet-W32
256x192 (seeded random weights whose BatchNorm statistics are set from one
batch of real crops, so that activations have a trained network's scale: with
the bare initialisation they shrink into denormal floats, which run several
times slower on the CPU), the flip test only with `--flip` (off in `track` by
default), the CPU default batch (8 crops per
call), `tracker.PoseTracker`, frames decoded from the file. The person count
is fixed: the default detector (SSDlite320 on the CPU, random weights) runs
on every `detect_every`-th frame for its real cost, and the pose stage gets
exactly N person-sized boxes spread over the frame (`gpu_check.CountedDetector`);
in between, boxes follow the tracked poses as in a real run. Random weights
give keypoint scores near 0, which the tracker rightly drops as no person; so
that the N people survive between detections, the scores are replaced by 0.8
after each (real, full-cost) pose call (`ConfidentEstimator`). `mean_people`
in the JSON says how many people each frame really had.

Machines differ 2-3x from day to day, so every fps is also given normalised:
fps x 510 / (GFLOP/s of a 3x3 NHWC convolution measured in this run, before
and after), 510 GFLOP/s being the reference machine's ceiling (issue 11).

Also: the threaded pipeline against its slowest stage alone (the same frames
through each stage on its own, one thread), for one setting (`--ratio-people`,
detection every frame); the target is >= 0.9. On the CPU the detector and the
pose network take turns (`Pipeline(one_model_at_a_time=)`), so the ratio's
bound is pose / (detection + pose); the same run with them overlapped shows
what the turns save.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # after ROOT: benchmarks/pipeline.py must not hide the package

from common import REFERENCE_GFLOPS, conv_ceiling_gflops, realistic_model  # noqa: E402
from gpu_check import CountedDetector  # noqa: E402

from core.types import Poses  # noqa: E402
from pipeline.capture import VideoFileSource  # noqa: E402
from pipeline.models import default_batch_size  # noqa: E402
from pipeline.pipeline import Pipeline  # noqa: E402
from pipeline.profile import PipelineProfile  # noqa: E402
from pose.estimator import PoseEstimator  # noqa: E402
from tracker import PoseTracker  # noqa: E402

class ConfidentEstimator:
    """The estimator, with its keypoint scores set to 0.8 (random weights score ~0: the tracker would drop everyone)."""

    def __init__(self, estimator) -> None:
        self._estimator = estimator

    def estimate_many(self, images, boxes_per_image):
        results = self._estimator.estimate_many(images, boxes_per_image)
        return [(keypoints, np.full_like(scores, 0.8)) for keypoints, scores in results]

    def __getattr__(self, name: str):
        return getattr(self._estimator, name)


def in_thread(function):
    """Run `function()` in a fresh thread (as pipeline stages run; torch's OpenMP team behaves differently in main)."""
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("value", function()))
    worker.start()
    worker.join()
    return box["value"]


def realistic_weights(config, path: Path) -> Path:
    """Seeded random weights for `config` with BatchNorm statistics from the reference crops, saved to `path`."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    _, model, _ = realistic_model(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def build(args, weights: Path, backend: str = "torch"):
    from detector.torchvision_detector import build_detector, resolve_detector_name  # noqa: PLC0415 - loads torch

    estimator = PoseEstimator.from_config(args.pose_config, weights=weights, device="cpu", flip_test=args.flip,
                                          batch_size=args.batch_size or default_batch_size("cpu"), backend=backend,
                                          cache_dir=args.cache_dir)
    settled = getattr(estimator.runtime, "settled", None)
    if settled is not None:  # auto: time the backend it settles on, not eager while it builds
        settled()
        print(f"  auto settled on {estimator.describe_backend()['backend']}", flush=True)
    name = resolve_detector_name(args.detector, "cpu")
    return ConfidentEstimator(estimator), build_detector(name, weights="random", device="cpu"), name


def run_track(video: Path, frames: int, detector, estimator, every: int, one_model_at_a_time=None) -> dict:
    profile = PipelineProfile()
    pipeline = Pipeline(VideoFileSource(video, max_frames=frames), detector, estimator, PoseTracker(),
                        detect_every=every, profile=profile, one_model_at_a_time=one_model_at_a_time)
    started = time.perf_counter()
    people = [len(result.poses) for result in pipeline.run()]
    seconds = time.perf_counter() - started
    return {"frames": len(people), "seconds": seconds, "fps": len(people) / seconds,
            "mean_people": float(np.mean(people)), "profile": profile.as_dict()}


def stages_alone(video: Path, frames: int, detector, estimator) -> dict:
    """Seconds per frame of each stage run alone on the same frames."""
    started = time.perf_counter()
    with VideoFileSource(video, max_frames=frames) as source:
        decoded = []
        while (frame := source.read()) is not None:
            decoded.append(frame)
    capture_s = (time.perf_counter() - started) / len(decoded)

    def detect():
        began = time.perf_counter()
        found = [detector([frame])[0] for frame in decoded]
        return (time.perf_counter() - began) / len(decoded), found

    detection_s, found = in_thread(detect)

    def estimate():
        began = time.perf_counter()
        results = [estimator.estimate_many([frame.image], [d.boxes])[0] for frame, d in zip(decoded, found)]
        return (time.perf_counter() - began) / len(decoded), results

    pose_s, results = in_thread(estimate)
    tracker = PoseTracker()
    poses = [Poses(k, s, d.boxes, d.scores) for (k, s), d in zip(results, found)]
    began = time.perf_counter()
    for item in poses:
        tracker.update(item.keypoints_with_scores(), boxes=item.boxes, scores=item.box_scores)
    tracking_s = (time.perf_counter() - began) / len(poses)
    return {"capture": capture_s, "detection": detection_s, "pose": pose_s, "tracking": tracking_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path, help="vtest.avi (or any video)")
    parser.add_argument("--frames", type=int, default=10, help="frames per setting (default 10)")
    parser.add_argument("--people", type=int, nargs="+", default=[1, 3, 8, 16])
    parser.add_argument("--detect-every", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--pose-config", default="coco/w32_256x192")
    parser.add_argument("--detector", default="auto", help="the default detector (auto) or another name")
    parser.add_argument("--batch-size", type=int, default=None, help="crops per network call (default: the CPU default)")
    parser.add_argument("--flip", action="store_true", help="with the flip test (track's default is without)")
    parser.add_argument("--ratio-people", type=int, default=3, help="people for the pipeline/slowest-stage check")
    parser.add_argument("--backends", nargs="+", default=["torch"], metavar="NAME",
                        help="pose backends, one curve each (default torch; see pose.backends.BACKENDS; auto is "
                        "timed once it has settled on a backend)")
    parser.add_argument("--cache-dir", default=None, help="compiled/exported network cache (default $HRTRACK_CACHE)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        parser.error(f"video not found: {args.video}")

    capture = cv2.VideoCapture(str(args.video))
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    scratch = None if args.cache_dir else tempfile.TemporaryDirectory(prefix="hrtrack-e2e-")
    weights = realistic_weights(args.pose_config, Path(args.cache_dir or scratch.name) / "e2e_weights.pth")
    estimators = {}
    for backend in args.backends:  # built (compiled, exported) before any timing
        estimators[backend], detector, detector_name = build(args, weights, backend)
        estimators[backend].estimate_many([np.zeros((height, width, 3), np.uint8)],
                                          [np.array([[0, 0, 100, 200]], np.float32)])
    estimator = estimators[args.backends[0]]
    ceilings = [conv_ceiling_gflops()]
    rows = []
    for every in args.detect_every:
        for people in args.people:
            counted = CountedDetector(detector, people, width, height)
            for backend, each in estimators.items():
                row = {"backend": backend, "people": people, "detect_every": every,
                       **run_track(args.video, args.frames, counted, each, every)}
                rows.append(row)
                print(f"  {backend}: {people:>2} people, detect every {every}: {row['fps']:.2f} fps", flush=True)
    counted = CountedDetector(detector, args.ratio_people, width, height)
    alone = stages_alone(args.video, args.frames, counted, estimator)
    threaded = run_track(args.video, args.frames, counted, estimator, 1)
    overlapped = run_track(args.video, args.frames, counted, estimator, 1, one_model_at_a_time=False)
    ceilings.append(conv_ceiling_gflops())
    ceiling = statistics.fmean(ceilings)
    scale = REFERENCE_GFLOPS / ceiling
    slowest = max(alone, key=alone.get)
    ratio = threaded["fps"] * alone[slowest]
    bound = alone[slowest] / (alone["detection"] + alone["pose"])

    print(f"\n# {args.video.name} {width}x{height}, {args.frames} frames per row, pose {args.pose_config} "
          f"(flip {'on' if args.flip else 'off'}, {estimator.batch_size} crops per call), detector "
          f"{detector_name}; conv ceiling {ceilings[0]:.0f} / {ceilings[1]:.0f} GFLOP/s (x{scale:.2f} to normalise)")
    print(f"{'backend':>18} {'people':>6} {'detect every':>12} {'fps':>7} {'fps normalised':>15} {'detection ms/frame':>19} "
          f"{'pose ms/frame':>14}")
    for row in rows:
        stages = row["profile"]["stage_ms_per_frame"]
        print(f"{row['backend']:>18} {row['people']:>6} {row['detect_every']:>12} {row['fps']:>7.2f} {row['fps'] * scale:>15.2f} "
              f"{stages.get('detection', 0):>19.1f} {stages.get('pose', 0):>14.1f}")
    print(f"pipeline vs slowest stage alone ({args.ratio_people} people, detect every frame): stages alone ms/frame "
          + ", ".join(f"{name} {1000 * seconds:.1f}" for name, seconds in alone.items())
          + f"; slowest {slowest} {1 / alone[slowest]:.2f} fps; threaded {threaded['fps']:.2f} fps; ratio {ratio:.3f} "
          f"(bound on a busy CPU, the slowest over the sum of the models: {bound:.3f}); with detection and pose "
          f"overlapped on the CPU instead of one at a time: {overlapped['fps']:.2f} fps")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "video": str(args.video), "frames": args.frames, "pose_config": args.pose_config,
            "flip_test": args.flip, "detector": detector_name, "batch_size": estimator.batch_size,
            "backends": args.backends, "conv_gflops": ceilings, "normalise_factor": scale, "rows": rows,
            "stages_alone_s": alone, "threaded": threaded, "threaded_to_slowest_ratio": ratio,
            "ratio_bound_one_model_at_a_time": bound, "threaded_models_overlapped": overlapped}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
