"""Time of our PoseTrack evaluator (poseval-compatible AP + MOT) on a large synthetic set.

Run: .venv/bin/python benchmarks/posetrack_eval.py [--videos 50 --frames 100 --people 10] [--oracle-videos 2]

Writes PoseTrack18 GT and noisy, tracked predictions (jitter, misses, false
positives, ID swaps, ignore regions, unlabeled frames) to a temporary folder,
then times reading and evaluating them, in both modes. With --oracle-videos N,
also times the loop-by-loop poseval restatement of tests/poseval_oracle.py
(which uses motmetrics, as poseval does) on the first N videos, as a stand-in
for poseval's own speed, and checks that both give the same numbers there.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.posetrack import evaluate, evaluate_paths, load_pairs  # noqa: E402
from core.posetrack_format import POSETRACK18_KEYPOINT_NAMES, POSEVAL_JOINT_NAMES  # noqa: E402

# PoseTrack18 file position -> poseval joint id (-1: ears, never annotated)
FILE_TO_POSEVAL = np.array([POSEVAL_JOINT_NAMES.index(n) if n in POSEVAL_JOINT_NAMES else -1 for n in POSETRACK18_KEYPOINT_NAMES])
SKELETON = np.array([[-0.6, 6.0], [-0.6, 4.6], [-0.5, 3.2], [0.5, 3.2], [0.6, 4.6], [0.6, 6.0], [-1.4, 3.0],
                     [-1.3, 2.0], [-1.0, 1.0], [1.0, 1.0], [1.3, 2.0], [1.4, 3.0], [0.0, 0.6], [0.0, 0.0], [0.0, -0.5]])


def make_video(rng: np.random.Generator, index: int, num_frames: int, num_people: int) -> tuple[dict, dict]:
    """(GT document, prediction document) for one synthetic video."""
    name = f"{index:06d}_mpii_test"
    heads = rng.uniform(25, 60, num_people)
    start = rng.uniform([100, 80], [1800, 700], (num_people, 2))
    velocity = rng.normal(0, 4, (num_people, 2))
    category = [{"id": 1, "name": "person", "keypoints": list(POSETRACK18_KEYPOINT_NAMES)}]
    gt = {"images": [], "annotations": [], "categories": category}
    pred = {"images": [], "annotations": [], "categories": category}
    for t in range(num_frames):
        image_id = index * 10_000 + t
        labeled = t % 4 != 3  # PoseTrack val labels a subset of frames
        image = {"file_name": f"images/val/{name}/{t:06d}.jpg", "id": image_id, "is_labeled": labeled}
        if labeled and t % 10 == 0:
            image["ignore_regions_x"] = [[0.0, 150.0, 150.0, 0.0]]
            image["ignore_regions_y"] = [[0.0, 0.0, 1080.0, 1080.0]]
        gt["images"].append(image)
        pred["images"].append({"file_name": image["file_name"], "id": image_id})
        centres = start + velocity * t
        swap = rng.random() < 0.05
        for k in range(num_people):
            joints = centres[k] + SKELETON * heads[k]  # (15, 2), poseval order
            present = rng.random(15) > 0.1
            if labeled:
                annotated = FILE_TO_POSEVAL >= 0
                annotated[annotated] = present[FILE_TO_POSEVAL[annotated]]
                keypoints = np.zeros((17, 3))  # 0, 0, 0 = not annotated
                keypoints[annotated, :2] = joints[FILE_TO_POSEVAL[annotated]]
                keypoints[annotated, 2] = 1
                x, y = centres[k]
                gt["annotations"].append({"image_id": image_id, "track_id": k, "keypoints": keypoints.ravel().tolist(),
                                          "bbox_head": [x - heads[k] / 2, y - heads[k] / 2, heads[k], heads[k]]})
            if rng.random() < 0.1:
                continue  # missed person
            noisy = joints + rng.normal(0, 0.15 * heads[k], (15, 2))
            keypoints = np.zeros((17, 3))
            keep = (FILE_TO_POSEVAL >= 0) & (rng.random(17) > 0.1)
            keypoints[keep, :2] = noisy[FILE_TO_POSEVAL[keep]]
            keypoints[keep, 2] = 1
            track = (k ^ 1 if swap and k < 2 else k) + 1000
            pred["annotations"].append({"image_id": image_id, "track_id": int(track), "keypoints": keypoints.ravel().tolist(),
                                        "scores": rng.random(17).tolist()})
        if rng.random() < 0.2:  # false positive person
            x, y = rng.uniform([200, 100], [1700, 600])
            keypoints = np.zeros((17, 3))
            valid = FILE_TO_POSEVAL >= 0
            keypoints[valid, :2] = (np.array([x, y]) + SKELETON * 40)[FILE_TO_POSEVAL[valid]]
            keypoints[valid, 2] = 1
            pred["annotations"].append({"image_id": image_id, "track_id": 5000 + t, "keypoints": keypoints.ravel().tolist(),
                                        "scores": rng.random(17).tolist()})
    return gt, pred


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=50)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--oracle-videos", type=int, default=0, help="also time the loop-by-loop poseval restatement on N videos")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        docs = []
        for v in range(args.videos):
            gt, pred = make_video(rng, v + 1, args.frames, args.people)
            docs.append((gt, pred))
            for kind, doc in (("gt", gt), ("pred", pred)):
                (root / kind).mkdir(exist_ok=True)
                (root / kind / f"{v + 1:06d}_mpii_test.json").write_text(json.dumps(doc))
        people = sum(len(gt["annotations"]) for gt, _ in docs)
        print(f"{args.videos} videos x {args.frames} frames x {args.people} people "
              f"({people} GT people, {sum(len(p['annotations']) for _, p in docs)} predicted)\n")
        rows = []
        start = time.perf_counter()
        pairs = load_pairs(root / "gt", root / "pred")
        load_s = time.perf_counter() - start
        rows.append(("read + validate files", load_s))
        for clean in (False, True):
            start = time.perf_counter()
            metrics = evaluate(pairs, clean=clean)
            rows.append((f"evaluate ({metrics.mode})", time.perf_counter() - start))
        start = time.perf_counter()
        metrics = evaluate_paths(root / "gt", root / "pred")
        rows.append(("total, compatible (read + evaluate)", time.perf_counter() - start))

        if args.oracle_videos:
            import motmetrics as mm  # noqa: PLC0415 - pandas-heavy, only for the oracle check

            from tests import poseval_oracle  # noqa: PLC0415 - imports motmetrics

            subset = docs[: args.oracle_videos]
            sub = root / "subset"
            for kind, index in (("gt", 0), ("pred", 1)):
                (sub / kind).mkdir(parents=True)
                for v, pair in enumerate(subset):
                    (sub / kind / f"{v + 1:06d}_mpii_test.json").write_text(json.dumps(pair[index]))
            start = time.perf_counter()
            ours = evaluate_paths(sub / "gt", sub / "pred")
            ours_s = time.perf_counter() - start
            start = time.perf_counter()
            with mm.lap.set_default_solver("scipy"):
                reference = poseval_oracle.poseval([g for g, _ in subset], [p for _, p in subset])
            oracle_s = time.perf_counter() - start
            worst = max(float(np.nanmax(np.abs(getattr(ours, k) - reference[k]))) for k in reference)
            rows.append((f"ours on {len(subset)} videos", ours_s))
            rows.append((f"poseval restatement (loops + motmetrics) on {len(subset)} videos", oracle_s))
            print(f"largest difference to the restatement: {worst:.2e} points; speed-up {oracle_s / ours_s:.0f}x\n")

    print("| step | seconds |\n| --- | --- |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")
    print()
    print(metrics.format_tables())
    return 0


if __name__ == "__main__":
    sys.exit(main())
