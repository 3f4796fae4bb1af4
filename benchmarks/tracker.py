"""Per-frame cost of `tracker.PoseTracker`, in microseconds, for 1 to 200 people.

Run: .venv/bin/python benchmarks/tracker.py [--frames 300]

The tracker (similarity matrix, matching, track updates) is timed without
optical flow; Lucas-Kanade propagation is timed separately on a textured
1920 x 1080 frame pair, since its cost depends on the image, not the matching.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker import PoseTracker, TrackerOptions  # noqa: E402
from evaluation.scenes import make_crowd_detections, random_texture  # noqa: E402
from tracker.flow import FlowParameters, propagate_keypoints, to_gray  # noqa: E402

PEOPLE = (1, 10, 50, 200)


def time_tracker(num_people: int, num_frames: int, **options) -> tuple[float, float, float]:
    """(median wall, median CPU, fastest wall) microseconds per `update` call over `num_frames` frames.

    CPU time (this process) is reported next to wall time because on a shared
    machine the wall time also counts waiting for a core; the fastest frame
    is the best estimate of the cost on an idle core.
    """
    frames = make_crowd_detections(num_people, num_frames + 20, seed=num_people)
    tracker = PoseTracker(**options)
    for keypoints, boxes, scores in frames[:20]:  # warm-up: tracks exist, caches are hot
        tracker.update(keypoints, boxes, scores)
    wall, cpu = [], []
    for keypoints, boxes, scores in frames[20:]:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        tracker.update(keypoints, boxes, scores)
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return float(np.median(wall) * 1e6), float(np.median(cpu) * 1e6), float(np.min(wall) * 1e6)


def numpy_call_overhead_us() -> float:
    """Median microseconds of one tiny numpy call: tells how loaded the machine is
    (well under 1 us on an idle modern core)."""
    values = np.zeros(64, np.float32)
    times = []
    for _ in range(2000):
        start = time.perf_counter()
        np.add(values, 1.0)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def time_flow(num_people: int, repeats: int) -> float:
    """Median microseconds of one Lucas-Kanade propagation of all people's keypoints."""
    rng = np.random.default_rng(0)
    texture = random_texture(rng, 1100, 1940)
    previous, current = to_gray(texture[:1080, :1920]), to_gray(texture[3:1083, 5:1925])
    keypoints = make_crowd_detections(num_people, 1, seed=num_people)[0][0]
    parameters = FlowParameters()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        propagate_keypoints(previous, current, keypoints, parameters)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="timed frames per size")
    args = parser.parse_args()
    rows = ["| people | default: median wall us/frame | default: median CPU us | default: fastest frame us | "
            "hungarian: median wall | simple baseline: median wall | LK flow propagation: median wall us |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    overhead_before = numpy_call_overhead_us()
    for num_people in PEOPLE:
        wall, cpu, fastest = time_tracker(num_people, args.frames)
        hungarian = time_tracker(num_people, args.frames, matching="hungarian")[0]
        baseline = time_tracker(num_people, args.frames, **TrackerOptions.simple_baseline().__dict__)[0]
        flow = time_flow(num_people, repeats=max(args.frames // 10, 5))
        rows.append(f"| {num_people} | {wall:.0f} | {cpu:.0f} | {fastest:.0f} | {hungarian:.0f} | {baseline:.0f} "
                    f"| {flow:.0f} |")
    start = time.perf_counter()
    sum(range(1_000_000))
    python_ms = (time.perf_counter() - start) * 1e3
    rows.append(f"\nMedians over {args.frames} frames. Machine speed/load indicators: one tiny numpy call took "
                f"{overhead_before:.2f} us before and {numpy_call_overhead_us():.2f} us after the run; "
                f"sum(range(10**6)) took {python_ms:.1f} ms.")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
