"""COCO keypoint evaluation exactly as the official HRNet test (`tools/test.py`) does it.

Prediction (`predict_coco`), FACTS section 9:

1. boxes per image, either from a detection file (COCO results list; category 1
   only, score >= TEST.IMAGE_THRE, used as given in the file's [x, y, w, h] and
   in file order) or the ground-truth boxes (TEST.USE_GT_BBOX: cleaned, score 1);
2. top-down HRNet with the flip test (the `PoseEstimator`), crops of many
   images in shared batches: the images run through `pipeline.Pipeline`
   (`evaluation.prediction`, the loop `track` uses) with the boxes as a
   detector and a sink collecting each detection;
3. per detection: keypoints [x, y, maxval], center, scale, area =
   prod(scale * 200) and the box score;
4. rescoring (box score x mean of the maxvals > IN_VIS_THRE) and per-image
   OKS-NMS at OKS_THRE (`pose.nms.evaluation_postprocess`);
5. a results list: image_id, category_id 1, keypoints [x, y, score] x K (17 for COCO),
   score (rescored), center, scale.

Scoring (`score_results`): pycocotools COCOeval, iouType "keypoints",
`useSegm = None`, the ten standard stats under the official names.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from core.io import read_json, write_json_atomic
from evaluation.prediction import ListedImageBoxes, predict_listed_images
from pose.nms import crop_area, evaluation_postprocess

logger = logging.getLogger(__name__)

# The names the official code prints, in COCOeval.stats order.
STATS_NAMES = ("AP", "Ap .5", "AP .75", "AP (M)", "AP (L)", "AR", "AR .5", "AR .75", "AR (M)", "AR (L)")
PERSON_CATEGORY_ID = 1
COCO_NUM_KEYPOINTS = 17


class BoxSource(Protocol):
    """Where the person boxes of an image come from (`detector.FileDetector`, `detector.GroundTruthDetector`)."""

    def boxes_xywh(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) float64 [x, y, w, h] px and (N,) float64 scores."""

    def detections_for_image_id(self, image_id: int):
        """The same boxes as `core.types.Detections` (with `boxes_xywh`)."""


@dataclass(frozen=True)
class CocoTestSettings:
    """The official TEST section values the COCO evaluation uses (defaults: every official COCO HRNet YAML).

    box_score_threshold: TEST.IMAGE_THRE; keypoint_score_threshold: TEST.IN_VIS_THRE;
    oks_nms_threshold: TEST.OKS_THRE; soft_nms: TEST.SOFT_NMS.
    """

    box_score_threshold: float = 0.0
    keypoint_score_threshold: float = 0.2
    oks_nms_threshold: float = 0.9
    soft_nms: bool = False

    @classmethod
    def from_config(cls, experiment) -> "CocoTestSettings":
        """Read them from an `ExperimentConfig`'s TEST section."""
        test = experiment.test
        return cls(float(test.image_thre), float(test.in_vis_thre), float(test.oks_thre), bool(test.soft_nms))


def load_annotation(path: str | os.PathLike) -> dict:
    """A COCO keypoint annotation file as a dict, checked, with `area` filled in where missing.

    PoseTrack-style files have no `area`; COCOeval needs one, so bbox w x h
    stands in for it.
    """
    path = Path(path)
    annotation = read_json(path, "Annotation file")
    if not isinstance(annotation, dict) or not all(
        isinstance(annotation.get(key), list) for key in ("images", "annotations", "categories")
    ):
        raise ValueError(f"{path} is not a COCO annotation file (needs 'images', 'annotations', 'categories' lists)")
    for item in annotation["annotations"]:
        if "area" not in item and "bbox" in item:
            item["area"] = float(item["bbox"][2]) * float(item["bbox"][3])
    return annotation


def coco_ground_truth(annotation: dict):
    """A pycocotools COCO object from an annotation dict, without its prints."""
    coco = COCO()
    coco.dataset = annotation
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


class _DetectionCollector:
    """A pipeline sink keeping, per detection, what the official post-processing needs.

    Frame i is image `image_ids[i]`; its poses come in the order of its boxes
    (no tracker), whose exact [x, y, w, h] and scores the box table gives.
    """

    def __init__(self, estimator, boxes: BoxSource, image_ids: Sequence[int], progress_bar) -> None:
        self._estimator = estimator
        self._boxes = boxes
        self._image_ids = list(image_ids)
        self._bar = progress_bar
        self.keypoints: list[np.ndarray] = []
        self.centers: list[np.ndarray] = []
        self.scales: list[np.ndarray] = []
        self.box_scores: list[np.ndarray] = []
        self.image_ids: list[np.ndarray] = []

    def write(self, result) -> None:
        image_id = self._image_ids[result.frame.index]
        box_xywh, box_scores = self._boxes.boxes_xywh(image_id)
        poses = result.poses
        if len(poses) != len(box_xywh):
            raise ValueError(f"image {image_id}: {len(poses)} poses for {len(box_xywh)} boxes")
        centers, scales = self._estimator.centers_scales(box_xywh, box_format="xywh")
        self.keypoints.append(poses.keypoints_with_scores())  # (N, 17, 3) x, y px, maxval
        self.centers.append(centers)
        self.scales.append(scales)
        self.box_scores.append(box_scores)
        self.image_ids.append(np.full(len(box_xywh), image_id, np.int64))
        self._bar.update(len(box_xywh))

    def close(self, complete: bool) -> None:
        pass


def predict_coco(
    estimator,
    annotation: dict,
    images_dir: str | os.PathLike,
    boxes: BoxSource,
    settings: CocoTestSettings = CocoTestSettings(),
    progress: bool = True,
    profile=None,
    sigmas: np.ndarray | None = None,
) -> list[dict]:
    """Run the official test-time pipeline on every image of `annotation`; return the results list.

    Args:
        estimator: a `pose.PoseEstimator` with the keypoints of the annotation's
            person category (17 for COCO; any count for a custom COCO-format set).
        annotation: `load_annotation` output; its `images` give ids and file names.
        images_dir: folder the images' `file_name`s are relative to.
        boxes: per-image person boxes in [x, y, w, h] px (already filtered by
            TEST.IMAGE_THRE, in the order the official code would see them).
        settings: IN_VIS_THRE, OKS_THRE, SOFT_NMS for the post-processing.
        profile: a `pipeline.profile.PipelineProfile` for the run's stage times (`--profile`).
        sigmas: (K,) OKS sigmas of the OKS-NMS; None = COCO's (17 keypoints only), as the official call.

    Returns:
        COCO keypoint results, one dict per kept detection, images in
        annotation order, each image's detections in OKS-NMS keep order.
    """
    expected = _num_keypoints(annotation)
    if estimator.num_keypoints != expected:
        raise ValueError(f"the annotation's person category has {expected} keypoints, "
                         f"the model {estimator.num_keypoints}")
    _check_sigmas(sigmas, expected)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"Image folder {images_dir} does not exist")
    file_names = {int(image["id"]): image["file_name"] for image in annotation["images"]}
    counts = {image_id: len(boxes.boxes_xywh(image_id)[0]) for image_id in file_names}
    logger.info("%d images, %d person boxes", len(file_names), sum(counts.values()))
    # Images without a box give no result: they are not even read, as in the official test.
    image_ids = [image_id for image_id in file_names if counts[image_id]]
    if not image_ids:
        return []
    # Frames whose crops share one estimate_many call: about 4 network batches,
    # so the network is kept fed while the next images decode.
    crops_per_image = sum(counts.values()) / len(image_ids)
    frames_per_call = int(np.clip(round(4 * estimator.batch_size / crops_per_image), 1, 64))
    with tqdm(total=sum(counts.values()), unit="person", desc="COCO keypoints", disable=not progress) as bar:
        collector = _DetectionCollector(estimator, boxes, image_ids, bar)
        predict_listed_images([images_dir / file_names[image_id] for image_id in image_ids], str(images_dir),
                              ListedImageBoxes(boxes, image_ids), estimator, sinks=[collector], progress=False,
                              pose_batch_frames=frames_per_call, queue_size=frames_per_call, exact_file_boxes=True,
                              profile=profile)
    keypoints = np.concatenate(collector.keypoints).astype(np.float32)
    centers, scales = np.concatenate(collector.centers), np.concatenate(collector.scales)
    detection_image_ids = np.concatenate(collector.image_ids)
    kept, kept_scores = evaluation_postprocess(
        keypoints,
        np.concatenate(collector.box_scores),
        crop_area(scales),
        detection_image_ids,
        keypoint_score_threshold=settings.keypoint_score_threshold,
        oks_nms_threshold=settings.oks_nms_threshold,
        soft=settings.soft_nms,
        sigmas=sigmas,  # None: the official call relies on nms.py's built-in COCO sigmas
    )
    return [
        {
            "image_id": int(detection_image_ids[index]),
            "category_id": PERSON_CATEGORY_ID,
            "keypoints": keypoints[index].astype(np.float64).reshape(-1).tolist(),
            "score": float(score),
            "center": centers[index].astype(np.float64).tolist(),
            "scale": scales[index].astype(np.float64).tolist(),
        }
        for index, score in zip(kept, kept_scores)
    ]


def write_results(results: list[dict], path: str | os.PathLike) -> Path:
    """Write a COCO results list as JSON through the atomic writer (parent folders created)."""
    path = write_json_atomic(path, results)
    logger.info("wrote %d results to %s", len(results), path)
    return path


def load_results(path: str | os.PathLike, annotation: dict) -> list[dict]:
    """Read and check a COCO keypoint results file against the annotation it will be scored on."""
    path = Path(path)
    results = read_json(path, "Results file")
    check_results(results, annotation, source=str(path))
    return results


def check_results(results: object, annotation: dict, source: str = "results") -> None:
    """Raise ValueError naming `source` unless `results` is a non-empty keypoint results list for `annotation`."""
    if not isinstance(results, list):
        raise ValueError(f"{source} must hold a list of keypoint results, got {type(results).__name__}")
    if not results:
        raise ValueError(f"{source} holds no results: nothing to score")
    num_values = 3 * _num_keypoints(annotation)
    known_ids = {int(image["id"]) for image in annotation["images"]}
    for position, result in enumerate(results):
        if not isinstance(result, dict) or not {"image_id", "category_id", "keypoints", "score"} <= set(result):
            raise ValueError(f"{source}: result {position} needs image_id, category_id, keypoints and score")
        where = f"{source}: result {position} (image_id {result['image_id']!r})"
        if not isinstance(result["keypoints"], list) or len(result["keypoints"]) != num_values:
            raise ValueError(f"{where}: keypoints must be a list of {num_values} numbers")
        bad = next((index for index, value in enumerate(result["keypoints"]) if not _is_finite_number(value)), None)
        if bad is not None:
            raise ValueError(f"{where}: keypoints[{bad}] is {result['keypoints'][bad]!r}, not a finite number")
        if not _is_finite_number(result["score"]):
            raise ValueError(f"{where}: score is {result['score']!r}, not a finite number")
        if not isinstance(result["image_id"], int) or isinstance(result["image_id"], bool):
            raise ValueError(f"{where}: image_id must be an integer")
        if result["category_id"] != PERSON_CATEGORY_ID:
            # pycocotools would silently score such a result against nothing (AP 0.000).
            raise ValueError(f"{where}: category_id is {result['category_id']!r}; keypoint results must be "
                             f"of the person category ({PERSON_CATEGORY_ID})")
    unknown = sorted({result["image_id"] for result in results} - known_ids)
    if unknown:
        raise ValueError(f"{source}: {len(unknown)} image ids are not in the annotation file, e.g. {unknown[:5]}")


def _is_finite_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_sigmas(sigmas: np.ndarray | None, num_keypoints: int) -> None:
    if sigmas is None and num_keypoints != COCO_NUM_KEYPOINTS:
        raise ValueError(f"{num_keypoints} keypoints need their own OKS sigmas (COCO's are for 17)")
    if sigmas is not None and np.shape(sigmas) != (num_keypoints,):
        raise ValueError(f"{np.shape(sigmas)} OKS sigmas for {num_keypoints} keypoints")


def _num_keypoints(annotation: dict) -> int:
    person = next((c for c in annotation["categories"] if c.get("id") == PERSON_CATEGORY_ID), None)
    if person is None or not person.get("keypoints"):
        return COCO_NUM_KEYPOINTS
    return len(person["keypoints"])


@dataclass(frozen=True)
class CocoScores:
    """COCOeval keypoint stats (official names, in order) and pycocotools' own summary text."""

    stats: dict[str, float]
    summary: str


def score_results(results: list[dict], annotation: dict, sigmas: np.ndarray | None = None) -> CocoScores:
    """pycocotools COCOeval on keypoint `results` (checked first, see `check_results`).

    sigmas: (K,) OKS sigmas; None = pycocotools' COCO sigmas (17 keypoints only).
    """
    check_results(results, annotation)
    _check_sigmas(sigmas, _num_keypoints(annotation))
    ground_truth = coco_ground_truth(annotation)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress chatter
        # loadRes adds id/area/bbox to the dicts it gets: give it copies.
        detections = ground_truth.loadRes([dict(result) for result in results])
        evaluation = COCOeval(ground_truth, detections, "keypoints")
        evaluation.params.useSegm = None
        if sigmas is not None:
            evaluation.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluation.evaluate()
        evaluation.accumulate()
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        evaluation.summarize()
    stats = {name: float(value) for name, value in zip(STATS_NAMES, evaluation.stats)}
    return CocoScores(stats, output.getvalue())


def format_official_table(stats: dict[str, float], arch: str) -> str:
    """The markdown table the official `_print_name_value` logs."""
    names = list(stats)
    header = "| Arch " + " ".join(f"| {name}" for name in names) + " |"
    rule = "|---" * (len(names) + 1) + "|"
    row = f"| {arch} " + " ".join(f"| {value:.3f}" for value in stats.values()) + " |"
    return "\n".join([header, rule, row])
