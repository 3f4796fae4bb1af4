"""Batch throughput of the engines: local, Ray with 1 worker, Ray with 2 workers, in one run.

Run: .venv/bin/python benchmarks/scale_out.py [--videos 6] [--frames 20] [--rounds 2] [--json scale_out.json]

A folder of `--videos` copies of a synthetic video (the PoseTrack18 mini
frames, 1280 x 720, cycled to `--frames` frames, written as MJPG AVIs), two
people per frame from a box file (no detector network), the tiny seeded HRNet
(`tests/data/hrnet_reference/dev_tiny.*`, no flip test) and the tracker,
written as JSON: the `main.py track` work, on each engine in turn into a
fresh output folder.

Threads: the local engine uses torch's default (every core); Ray with 1
worker gives it every core (`cpus_per_worker` = cores, its torch threads),
with 2 workers half each, so that every configuration uses the whole
machine. One Ray instance with every core is started for all Ray rows; the
engines run in interleaved rounds (local, ray-1, ray-2, local, ...) and the
best round of each counts.

Reported per engine: videos/s and frames/s over the processing time (from
the first worker's models ready to the last output written: what a long
batch sees) and over the whole run (model setup included), and the ratios
ray-1 / local (Ray's overhead: goal >= 0.95) and ray-2 / ray-1 (scale-out,
where the machine has the cores). On a shared machine the numbers are noisy:
compare the ratios of one run, not runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import main  # noqa: E402
from pipeline.batch import TrackOptions, discover_inputs, run_tracking  # noqa: E402
from pipeline.engines import LocalEngine, RayEngine, start_local_ray  # noqa: E402
from pipeline.models import build_track_models  # noqa: E402
from tests.sample_data import DATA, TINY_MODEL_ARGS  # noqa: E402

FRAMES_DIR = DATA / "posetrack18_mini" / "videos" / "000001_mpiinew_test"


def make_inputs(folder: Path, videos: int, frames: int) -> Path:
    """`videos` identical MJPG AVIs of `frames` frames; returns the box file (2 people per frame, by index)."""
    images = [cv2.imread(str(path)) for path in sorted(FRAMES_DIR.glob("*.jpg"))]
    height, width = images[0].shape[:2]
    first = folder / "videos" / "v00.avi"
    first.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(first), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    for index in range(frames):
        writer.write(images[index % len(images)])
    writer.release()
    for number in range(1, videos):
        shutil.copy(first, first.with_name(f"v{number:02d}.avi"))
    entries = [{"image_id": i, "category_id": 1, "bbox": [300 + 3 * i, 150, 200, 450], "score": 0.95}
               for i in range(frames)]
    entries += [{"image_id": i, "category_id": 1, "bbox": [700, 200, 180, 400], "score": 0.8} for i in range(frames)]
    boxes = folder / "boxes.json"
    boxes.write_text(json.dumps(entries))
    return boxes


def measure(name: str, engine, inputs, build, out: Path) -> dict:
    summary, report = run_tracking(inputs, out, ("json",), build, TrackOptions(progress=False), engine=engine)
    if summary.failed or len(summary.done) != len(inputs):
        raise RuntimeError(f"{name}: not every video was done: {summary.lines()}")
    processing, wall = report.processing_s, report.wall_s
    row = {
        "engine": name, "workers": len(report.workers), "videos": len(summary.done), "frames": summary.frames,
        "setup_s": round(report.setup_s, 3), "processing_s": round(processing, 3), "wall_s": round(wall, 3),
        "videos_per_s": len(summary.done) / processing, "frames_per_s": summary.frames / processing,
        "videos_per_s_with_setup": len(summary.done) / wall, "frames_per_s_with_setup": summary.frames / wall,
        "per_worker": [{"label": w.label, "videos": w.videos, "frames": w.frames, "fps": round(w.fps, 3)}
                       for w in report.workers],
    }
    print(f"{name:<7} {row['workers']} worker(s): {row['videos_per_s']:.3f} videos/s, {row['frames_per_s']:.2f} "
          f"frames/s ({row['frames_per_s_with_setup']:.2f} with {row['setup_s']:.1f} s setup)", flush=True)
    return row


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6, help="videos in the batch (default 6)")
    parser.add_argument("--frames", type=int, default=20, help="frames per video (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each engine counts")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the numbers to this file")
    args = parser.parse_args()
    import ray  # noqa: PLC0415 - the optional extra, needed for the Ray rows

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="scale_out_") as folder:
        folder = Path(folder)
        boxes = make_inputs(folder, args.videos, args.frames)
        settings = main.build_parser("track").parse_args(
            ["track", str(folder / "videos"), "--det-file", str(boxes), "--det-image-key", "index", *TINY_MODEL_ARGS])
        build = functools.partial(build_track_models, settings, {})
        inputs = discover_inputs(folder / "videos")
        engines = {
            "local": LocalEngine,
            "ray-1": lambda: RayEngine(workers=1, cpus_per_worker=cores, gpus_per_worker=0),
            "ray-2": lambda: RayEngine(workers=2, cpus_per_worker=max(1, cores // 2), gpus_per_worker=0),
        }
        os.chdir(ROOT)  # Ray workers start in the driver's folder: the project must import there
        start_local_ray(ray, num_cpus=cores)  # as --engine ray starts it: workers at the driver's priority
        runs: dict[str, list[dict]] = {name: [] for name in engines}
        try:
            # Interleaved rounds, so that a change of load on a shared machine hits every engine alike.
            for round_index in range(args.rounds):
                for name, make in engines.items():
                    runs[name].append(measure(name, make(), inputs, build, folder / f"out_{name}_{round_index}"))
        finally:
            ray.shutdown()
    rows = [max(found, key=lambda row: row["frames_per_s"]) for found in runs.values()]  # best round of each
    by_name = {row["engine"]: row for row in rows}
    ratios = {
        "ray1_over_local": by_name["ray-1"]["frames_per_s"] / by_name["local"]["frames_per_s"],
        "ray2_over_ray1": by_name["ray-2"]["frames_per_s"] / by_name["ray-1"]["frames_per_s"],
    }
    print(f"ray-1 / local: {ratios['ray1_over_local']:.3f} (goal >= 0.95); "
          f"ray-2 / ray-1: {ratios['ray2_over_ray1']:.3f} on {cores} core(s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": cores, "videos": args.videos, "frames": args.frames,
                                               "rounds": args.rounds, "best": rows, "all_runs": runs,
                                               "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main_())
