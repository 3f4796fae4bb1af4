"""Re-identification by appearance (`TrackerOptions.reid`): quality and cost.

Run: .venv/bin/python benchmarks/tracker_reid.py [--seeds 10-14] [--frames 450] [--cost-frames 300]

1. Quality on `evaluation.dressed_scenes` (clothed people leaving for 2-10 s,
   hiding 1.5-4 s behind walls, three dressed alike, a crowd of ten): IDF1,
   MOTA and ID switches from motmetrics, and the re-identification rate (the
   share of returns after >= 1 s out of view where the person carries the ID
   they had, `dressed_scenes.reidentified`), for each --reid setting.
2. Cost: the same ten-person crowd tracked by two trackers in lockstep, one
   without and one with reid, each frame timed for both side by side; the
   median of the per-frame differences is the cost (robust to a busy machine).
3. Keypoint-only: on `evaluation.scenes` scenes without frames, reid on gives
   exactly the IDs of reid off (checked, printed as a yes/no per scene).
4. The same `evaluation.scenes` scenes rendered (people as textured patches,
   not clothed figures), frames given: IDF1 and switches with and without reid.

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.dressed_scenes import DRESSED_SCENARIOS, make_dressed_scene, reidentified  # noqa: E402
from evaluation.scenes import SCENARIOS, make_scene  # noqa: E402
from evaluation.tracking import evaluate_scene  # noqa: E402
from tracker import PoseTracker, TrackerOptions  # noqa: E402

logger = logging.getLogger(__name__)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(value) for value in text.split(",")]


def quality(seeds: list[int], num_frames: int, settings: list[str]) -> None:
    print(f"Seeds {seeds}, {num_frames} frames (crowd: {num_frames * 2 // 3}). IDF1, MOTA: mean over seeds; "
          "switches and returns: totals.\n")
    print("| scene | reid | IDF1 | MOTA | ID switches | re-identified | ms/frame (tracking and scoring) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in DRESSED_SCENARIOS:
        frames = num_frames * 2 // 3 if name == "dressed_crowd" else num_frames
        scenes = [make_dressed_scene(name, seed=seed, num_frames=frames) for seed in seeds]
        for setting in settings:
            idf1, mota, switches, back, total, seconds = [], [], 0, 0, 0, 0.0
            for scene in scenes:
                ids: list[np.ndarray] = []
                start = time.perf_counter()
                metrics = evaluate_scene(scene, lambda: PoseTracker(reid=setting), setting, use_images=True,
                                         ids_per_frame=ids)
                seconds += time.perf_counter() - start
                outcome = reidentified(scene, ids)
                idf1.append(metrics.idf1)
                mota.append(metrics.mota)
                switches += metrics.num_switches
                back, total = back + sum(outcome), total + len(outcome)
            rate = f"{back}/{total} = {back / total:.2f}" if total else "-"
            print(f"| {name} | {setting} | {np.mean(idf1):.3f} | {np.mean(mota):.3f} | {switches} | {rate} | "
                  f"{1e3 * seconds / (len(scenes) * frames):.2f} |", flush=True)


def cost(num_frames: int, setting: str, seed: int = 0) -> None:
    scene = make_dressed_scene("dressed_crowd", seed=seed, num_frames=num_frames)
    without, with_reid = PoseTracker(), PoseTracker(reid=setting)
    base, extra = [], []
    for frame in scene.frames:
        start = time.perf_counter()
        without.update(frame.keypoints, frame.boxes, frame.scores, frame.image)
        middle = time.perf_counter()
        with_reid.update(frame.keypoints, frame.boxes, frame.scores, frame.image)
        end = time.perf_counter()
        base.append(middle - start)
        extra.append((end - middle) - (middle - start))
    people = np.mean([len(frame.keypoints) for frame in scene.frames])
    print(f"\nCost, {num_frames} frames of dressed_crowd (mean {people:.1f} detections a frame), two trackers "
          f"in lockstep: without reid median {1e3 * np.median(base):.3f} ms/frame; reid={setting} adds median "
          f"{1e3 * np.median(extra):.3f} ms/frame (mean {1e3 * np.mean(extra):.3f}, 90th percentile "
          f"{1e3 * np.percentile(extra, 90):.3f}).")


def keypoint_only(num_frames: int, setting: str) -> None:
    print(f"\nKeypoint-only (frame=None), reid={setting} against off, {num_frames} frames, seed 0:\n")
    print("| scene | identical IDs and poses |")
    print("| --- | --- |")
    for name in SCENARIOS:
        scene = make_scene(name, seed=0, num_frames=num_frames)
        trackers = PoseTracker(), PoseTracker(reid=setting)
        same = True
        for frame in scene.frames:
            first, second = (tracker.update(frame.keypoints, frame.boxes, frame.scores) for tracker in trackers)
            same &= np.array_equal(first.ids, second.ids) and np.array_equal(first.keypoints, second.keypoints)
        print(f"| {name} | {'yes' if same else 'NO'} |")


def rendered(seeds: list[int], num_frames: int, setting: str) -> None:
    print(f"\n`evaluation.scenes` rendered, frames given, seeds {seeds}, {num_frames} frames:\n")
    print("| scene | IDF1 off | IDF1 reid | switches off | switches reid |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in SCENARIOS:
        rows = {"off": [], setting: []}
        for seed in seeds:
            scene = make_scene(name, seed=seed, num_frames=num_frames, render=True)
            for reid in rows:
                rows[reid].append(evaluate_scene(scene, lambda: PoseTracker(reid=reid), reid, use_images=True))
        off, on = rows["off"], rows[setting]
        print(f"| {name} | {np.mean([m.idf1 for m in off]):.3f} | {np.mean([m.idf1 for m in on]):.3f} | "
              f"{sum(m.num_switches for m in off)} | {sum(m.num_switches for m in on)} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="10-14", help="scene seeds: '10-14' or '1,2,3' (default 10-14, not "
                        "the seeds the thresholds were chosen on, 0-4)")
    parser.add_argument("--frames", type=int, default=450, help="frames per scene (15 s at 30 fps)")
    parser.add_argument("--cost-frames", type=int, default=300, help="frames of the cost run")
    parser.add_argument("--reid", action="append", default=None,
                        help="reid settings to compare (repeatable; default: off and appearance)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = args.reid or ["off", "appearance"]
    start = time.perf_counter()
    quality(_seeds(args.seeds), args.frames, settings)
    for setting in settings:
        if setting != "off":
            cost(args.cost_frames, setting)
            keypoint_only(150, setting)
            rendered(_seeds(args.seeds), 150, setting)
    logger.info("done in %.1f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
