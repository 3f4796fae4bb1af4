"""Tracking quality on synthetic scenes with motmetrics: MOTA, IDF1, ID switches.

Ground truth and hypotheses are matched per frame on pose distance
1 - OKS (COCO sigmas, ground-truth visible joints, box-area scale); a pair with
OKS below `min_oks` cannot match. motmetrics then counts misses, false
positives and identity switches over the whole scene.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from tracker.similarity import box_areas, oks_matrix
from evaluation.scenes import Scene
from tracker import PoseTracker, TrackerOptions

logger = logging.getLogger(__name__)

METRIC_NAMES = ("mota", "idf1", "num_switches", "num_false_positives", "num_misses", "num_fragmentations")


@dataclass(frozen=True)
class SceneMetrics:
    """Scores of one tracker run on one scene. mota, idf1 in (-inf, 1]; counts are totals."""

    scene: str
    option_set: str
    mota: float
    idf1: float
    num_switches: int
    num_false_positives: int
    num_misses: int
    num_fragmentations: int


def pose_distance(gt_keypoints: np.ndarray, gt_boxes: np.ndarray, hyp_keypoints: np.ndarray,
                  hyp_boxes: np.ndarray, min_oks: float = 0.5) -> np.ndarray:
    """(G, H) float64 distance 1 - OKS; NaN (no match allowed) where OKS < min_oks.

    gt_keypoints: (G, 17, 3) [x, y, visibility] with 2 = visible; only visible joints count.
    hyp_keypoints: (H, 17, 3) [x, y, confidence]; every hypothesis joint is used.
    """
    gt = gt_keypoints.copy()
    gt[..., 2] = (gt_keypoints[..., 2] >= 2).astype(np.float32)
    hyp = hyp_keypoints.copy()
    hyp[..., 2] = 1.0
    oks, _ = oks_matrix(gt, hyp, box_areas(gt_boxes), box_areas(hyp_boxes), keypoint_threshold=0.5)
    distance = 1.0 - oks.astype(np.float64)
    distance[oks < min_oks] = np.nan
    return distance


def evaluate_scene(scene: Scene, make_tracker: Callable[[], PoseTracker], option_set: str = "",
                   use_images: bool = False, ids_per_frame: list | None = None) -> SceneMetrics:
    """Run a fresh tracker over `scene` and score it.

    use_images: pass the rendered frames to the tracker (needed for flow and reid).
    ids_per_frame: a list that gets each frame's (N,) track IDs of the detections (`TrackingResult.ids`).
    """
    import motmetrics as mm  # noqa: PLC0415  (pandas-heavy; only evaluation needs it)

    tracker = make_tracker()
    accumulator = mm.MOTAccumulator(auto_id=True)
    for frame in scene.frames:
        if use_images and frame.image is None:
            raise ValueError(f"scene {scene.name!r} was not rendered; build it with render=True for flow or reid")
        result = tracker.update(frame.keypoints, frame.boxes, frame.scores, frame.image if use_images else None)
        distance = pose_distance(frame.gt_keypoints, frame.gt_boxes, result.keypoints, result.boxes)
        accumulator.update(frame.gt_ids.tolist(), result.track_ids.tolist(), distance)
        if ids_per_frame is not None:
            ids_per_frame.append(result.ids)
    host = mm.metrics.create()
    summary = host.compute(accumulator, metrics=list(METRIC_NAMES), name=scene.name)
    row = summary.iloc[0]
    return SceneMetrics(scene.name, option_set, float(row["mota"]), float(row["idf1"]),
                        int(row["num_switches"]), int(row["num_false_positives"]), int(row["num_misses"]),
                        int(row["num_fragmentations"]))


def evaluate(scenes: Iterable[Scene], option_sets: Mapping[str, TrackerOptions],
             progress: bool = False) -> list[SceneMetrics]:
    """Score every option set on every scene; option sets with flow or reid get the rendered images."""
    scenes = list(scenes)
    jobs = [(scene, name, options) for scene in scenes for name, options in option_sets.items()]
    if progress:
        jobs = tqdm(jobs, desc="tracker quality", unit="run")
    results = []
    for scene, name, options in jobs:
        results.append(evaluate_scene(scene, lambda options=options: PoseTracker(options), name,
                                      use_images=options.flow or options.reid != "off"))
        logger.debug("%s / %s: %s", scene.name, name, results[-1])
    return results


def markdown_table(results: Iterable[SceneMetrics]) -> str:
    """Markdown table: one row per scene and option set."""
    lines = ["| scene | option set | MOTA | IDF1 | ID switches | FP | misses |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r.scene} | {r.option_set} | {r.mota:.3f} | {r.idf1:.3f} | {r.num_switches} | "
                     f"{r.num_false_positives} | {r.num_misses} |")
    return "\n".join(lines)
