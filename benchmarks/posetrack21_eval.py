"""Our PoseTrack21 scorer (keypoint HOTA + mAP) against the official kit: numbers, speed and peak memory.

Run:
    .venv/bin/python benchmarks/posetrack21_eval.py [--sequences 20 --frames 60 --people 8 --seed 0]
        [--kit PoseTrack21/eval/posetrack21 --kit-python /path/to/kitenv/bin/python] [--keep DIR]

Writes PoseTrack21-layout GT and noisy tracked predictions (jitter of several
sizes, misses, false positives, ID switches, people and false positives inside
ignore regions, empty ignore-region entries, unlabeled frames, labeled frames
without predictions, a sequence without predictions, predictions without
`scores`, frames with integer keypoints, people without joints) to a temporary
folder. Then it runs our scorer in a child process and, with --kit, the kit
(its `PoseTrack` dataset with `HOTAeypoints`, then with `PosemAP`, serially, as
its run_posetrack_challenge.py / run_pose_estimation.py with USE_PARALLEL
False) in its own environment (numpy < 1.24; see docs/POSETRACK21.md), compares
every reported field of every joint, and prints a markdown table of wall time
and peak RSS of each side. The kit is not needed otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# A standing person in PoseTrack's 17-keypoint file order, in head-box units (y down); ears (3, 4) unused.
SKELETON = np.array([
    [0.0, 0.0], [0.0, 0.6], [0.0, -0.5], [0.0, 0.0], [0.0, 0.0],      # nose, head bottom, head top, (ears)
    [1.0, 1.0], [-1.0, 1.0], [1.3, 2.0], [-1.3, 2.0], [1.4, 3.0], [-1.4, 3.0],  # shoulders, elbows, wrists
    [0.5, 3.2], [-0.5, 3.2], [0.6, 4.6], [-0.6, 4.6], [0.6, 6.0], [-0.6, 6.0],  # hips, knees, ankles
])
EARS = (3, 4)


def _annotation(image_id: int, track_id: int, points: np.ndarray, head: list[float], *, scores=None,
                integer: bool = False) -> dict:
    keypoints = np.zeros((17, 3))
    keypoints[:, :2] = points
    keypoints[:, 2] = (points[:, 0] > 0) & (points[:, 1] > 0)
    keypoints[list(EARS)] = 0
    # two decimals, as trackers often write them; scores too, so that tied scores with different labels occur
    values = [int(round(v)) for v in keypoints.ravel()] if integer else [round(float(v), 2) for v in keypoints.ravel()]
    annotation = {"image_id": image_id, "track_id": int(track_id), "person_id": int(track_id), "keypoints": values,
                  "bbox_head": head}
    if scores is not None:
        annotation["scores"] = [round(float(s), 2) for s in scores]
    return annotation


def make_sequence(rng: np.random.Generator, index: int, num_frames: int, num_people: int) -> tuple[str, dict, dict]:
    """(file name, GT document, prediction document) of one synthetic sequence."""
    name = f"{index:06d}_mpii_test.json"
    base = 10_000_000 + index * 1000
    heads = rng.uniform(20, 60, num_people)
    start = rng.uniform([150, 100], [1700, 600], (num_people, 2))
    velocity = rng.normal(0, 3, (num_people, 2))
    region = np.array([[0, 0], [300, 0], [300, 720], [0, 720]], float) + [rng.uniform(-350, 0), 0]
    switch_at = rng.integers(num_frames // 4, max(num_frames // 4 + 1, 3 * num_frames // 4))
    no_prediction_frames = set(rng.choice(num_frames, size=max(1, num_frames // 25), replace=False).tolist())
    images, gt_annotations, pred_annotations = [], [], []
    for t in range(num_frames):
        image_id = base + t
        labeled = t == 0 or rng.random() < 0.7
        with_region = rng.random() < 0.4
        regions_x, regions_y = ([region[:, 0].tolist()], [region[:, 1].tolist()]) if with_region else ([], [])
        if not with_region and rng.random() < 0.05:
            regions_x, regions_y = [[]], [[]]  # an empty entry: the kit's ignore pass still runs
        images.append({"id": image_id, "file_name": f"images/val/{name[:-5]}/{t:06d}.jpg", "is_labeled": labeled,
                       "ignore_regions_x": regions_x, "ignore_regions_y": regions_y, "frame_id": image_id,
                       "vid_id": str(index)})
        integer_frame = rng.random() < 0.08
        for p in range(num_people):
            centre = start[p] + velocity[p] * t
            points = centre + SKELETON * heads[p]
            hidden = rng.random(17) < 0.15
            points[hidden] = 0
            if p == 0 and t % 7 == 3:
                points[:] = 0  # a GT person without joints
            head = [float(centre[0] - heads[p] / 2), float(centre[1] - heads[p] * 0.9), float(heads[p]),
                    float(heads[p] * 1.2)]
            gt_annotations.append(_annotation(image_id, p + 1, points, head))
            if t in no_prediction_frames or rng.random() < 0.1:
                continue  # missed person / frame
            scale = rng.choice([0.02, 0.1, 0.3, 0.6])
            noisy = points + rng.normal(0, scale * heads[p], points.shape)
            noisy[(points[:, 0] <= 0) | (rng.random(17) < 0.1)] = 0
            track = p + 1 if t < switch_at or p > 1 else (1 - p) + 1  # persons 0 and 1 swap ids half-way
            track = track + 100 if p == 2 and t > switch_at else track  # person 2 gets a new id later
            scores = None if rng.random() < 0.05 else rng.uniform(0, 1, 17)
            pred_annotations.append(_annotation(image_id, track, noisy, head, scores=scores, integer=integer_frame))
        for k in range(rng.poisson(0.7)):
            fp = rng.uniform([100, 100], [1800, 700]) + SKELETON * rng.uniform(20, 50)
            if with_region and k == 0:
                fp = np.array([region[:, 0].mean(), 300.0]) + SKELETON * 20  # inside the ignore region
            pred_annotations.append(_annotation(image_id, 500 + k, fp, [0, 0, 1, 1], scores=rng.uniform(0, 1, 17),
                                                integer=integer_frame))
        if rng.random() < 0.03:
            pred_annotations.append(_annotation(image_id, 900, np.zeros((17, 2)), [0, 0, 1, 1],
                                                scores=rng.uniform(0, 1, 17)))
    # every labeled frame keeps a GT person outside the ignore region (the kit crashes otherwise)
    gt = {"images": images, "annotations": gt_annotations,
          "categories": [{"id": 1, "name": "person", "keypoints": []}]}
    pred = {"images": images, "annotations": [] if index % 9 == 8 else pred_annotations}
    return name, gt, pred


def write_set(folder: Path, num_sequences: int, num_frames: int, num_people: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    gt_dir, pred_dir = folder / "gt", folder / "pred"
    gt_dir.mkdir(parents=True, exist_ok=True)
    pred_dir.mkdir(parents=True, exist_ok=True)
    for index in range(num_sequences):
        name, gt, pred = make_sequence(rng, index, num_frames, num_people)
        (gt_dir / name).write_text(json.dumps(gt))
        (pred_dir / name).write_text(json.dumps(pred))
    return gt_dir, pred_dir


OURS = textwrap.dedent("""
    import json, resource, sys, time
    sys.path.insert(0, sys.argv[1])
    start = time.perf_counter()
    from evaluation.posetrack21 import evaluate_paths
    metrics = evaluate_paths(sys.argv[2], sys.argv[3])
    out = metrics.to_dict()
    out["seconds"] = time.perf_counter() - start
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(out, open(sys.argv[4], "w"))
""")

# Runs the kit's own classes the way its two scripts do (serial), and reports full-precision values.
KIT = textwrap.dedent("""
    import contextlib, io, json, os, resource, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    start = time.perf_counter()
    import posetrack21.trackeval as trackeval
    joints = ['Nose', 'Neck', 'Head', 'LS', 'RS', 'LE', 'RE', 'LW', 'RW', 'LH', 'RH', 'LK', 'RK', 'LA', 'RA', 'Total']
    out = {"hota": {}, "counts": {}, "ap": {}}
    for evaluator_class, metric_class in ((trackeval.Evaluator, trackeval.metrics.HOTAeypoints),
                                          (trackeval.PoseEvaluator, trackeval.metrics.PosemAP)):
        config = {**evaluator_class.get_default_eval_config(), "USE_PARALLEL": False, "LOG_ON_ERROR": None,
                  "PRINT_CONFIG": False}
        dataset = trackeval.datasets.PoseTrack({"GT_FOLDER": sys.argv[2], "TRACKERS_FOLDER": sys.argv[3],
                                                "PRINT_CONFIG": False, "ASSURE_SINGLE_TRACKER": False})
        metric = metric_class()
        with contextlib.redirect_stdout(io.StringIO()):
            res, msg = evaluator_class(config).evaluate([dataset], [metric])
        trackers = res["PoseTrack"]
        combined = next(iter(trackers.values()))["COMBINED_SEQ"]["person"][metric.get_name()]
        if metric_class is trackeval.metrics.HOTAeypoints:
            for name, value in combined.items():
                if name in metric.float_array_fields:
                    out["hota"][name] = dict(zip(joints, (100 * np.mean(value, axis=0)).tolist()))
                elif name in metric.float_fields:
                    out["hota"][name] = dict(zip(joints, (100 * np.asarray(value)).tolist()))
                elif name in metric.integer_array_fields:
                    out["counts"][name] = dict(zip(joints, np.mean(value, axis=0).tolist()))
                else:
                    out["counts"][name] = dict(zip(joints, np.asarray(value, float).tolist()))
        else:
            out["ap"] = {name: {k: float(v) for k, v in combined[name].items()} for name in ("map", "precision", "recall")}
    out["seconds"] = time.perf_counter() - start
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(out, open(sys.argv[4], "w"))
""")


def run_child(python: str, script: str, args: list[str], out: Path, cwd: Path | None = None) -> dict:
    subprocess.run([python, "-c", script, *args, str(out)], check=True, cwd=cwd)
    return json.loads(out.read_text())


def compare(ours: dict, kit: dict, tolerance: float = 1e-3) -> tuple[list[str], float]:
    """(every field / joint where |ours - kit| > tolerance (percent or count), the largest difference)."""
    problems, largest = [], 0.0
    for section in ("hota", "counts", "ap"):
        for name, row in kit[section].items():
            for column, value in row.items():
                mine = (ours.get(section) or {}).get(name, {}).get(column)
                if mine is None or abs(mine - value) > tolerance:
                    problems.append(f"{section}.{name}.{column}: ours {mine} kit {value}")
                if mine is not None:
                    largest = max(largest, abs(mine - value))
    return problems, largest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=20)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kit", type=Path, help="the kit's eval/posetrack21 folder (holding posetrack21/trackeval)")
    parser.add_argument("--kit-python", default=None, help="python of the kit's environment (numpy < 1.24)")
    parser.add_argument("--keep", type=Path, help="write the set here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        gt_dir, pred_dir = write_set(folder, args.sequences, args.frames, args.people, args.seed)
        # the first half of the sequences alone: peak memory should not grow with the number of sequences
        half = max(1, args.sequences // 2)
        for name in ("gt_half", "pred_half"):
            (folder / name).mkdir(exist_ok=True)
        for path in sorted(gt_dir.glob("*.json"))[:half]:
            for source, target in ((gt_dir, "gt_half"), (pred_dir, "pred_half")):
                (folder / target / path.name).write_bytes((source / path.name).read_bytes())
        ours_half = run_child(sys.executable, OURS, [str(ROOT), str(folder / "gt_half"), str(folder / "pred_half")],
                              folder / "ours_half.json")
        ours = run_child(sys.executable, OURS, [str(ROOT), str(gt_dir), str(pred_dir)], folder / "ours.json")
        rows = [(f"ours, first {half} sequences", ours_half), ("ours", ours)]
        if args.kit:
            kit = run_child(args.kit_python or sys.executable, KIT, [str(args.kit.resolve()), str(gt_dir) + "/",
                                                                     str(pred_dir) + "/"], folder / "kit.json")
            rows.append(("official kit", kit))
            problems, largest = compare(ours, kit)
    print(f"{args.sequences} sequences x {args.frames} frames x {args.people} people (seed {args.seed}); "
          "seconds include imports and reading\n")
    print("| scorer | seconds | peak RSS MB | HOTA Total | DetA | AssA | mAP Total |")
    print("|---|---|---|---|---|---|---|")
    for label, result in rows:
        hota = result["hota"]
        print(f"| {label} | {result['seconds']:.2f} | {result['peak_rss_mb']:.0f} | {hota['HOTA']['Total']:.4f} | "
              f"{hota['DetA']['Total']:.4f} | {hota['AssA']['Total']:.4f} | {result['ap']['map']['Total']:.4f} |")
    if args.kit:
        print(f"\nspeed ratio kit/ours: {kit['seconds'] / ours['seconds']:.1f}x (same files, one run)")
        fields = sum(len(row) for section in ("hota", "counts", "ap") for row in kit[section].values())
        print(f"fields compared: {fields}; differing by more than 1e-3: {len(problems)}; largest difference {largest:.2g}")
        for line in problems[:40]:
            print("  " + line)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
