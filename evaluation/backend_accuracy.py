"""What a fast backend costs in accuracy, measured as the task measures it: COCO AP, and OKS to eager fp32.

    rows = accuracy_rows(estimator, {"onnxruntime-int8": runtime}, people, annotation_path, images_dir)
    # [{"backend", "ap", "ap_loss", "oks_mean", "oks_min", "mean_px", "within_2px", ...}], eager fp32 first

- AP: the estimator (its flip test and decoding) on the ground-truth boxes of
  a COCO-format validation set, scored by pycocotools as `coco eval --gt-boxes`
  does; `ap_loss` is eager fp32's AP minus the backend's, in AP points (0-100).
- OKS: the backend's keypoints against eager fp32's on reference people
  (`pose.backends.agreement`), the number `--backend auto` gates on at start.

Both must be measured in the network's own distribution: a network shown
people unlike its training data gives flat heatmaps whose argmax any rounding
moves. For the small network trained on synthetic stick figures
(tests/data/trained) that is `synthetic_sets`: its validation set (the seed it
was validated on) and separate reference and calibration figures.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.ground_truth import GroundTruthDetector
from evaluation.coco import load_annotation, predict_coco, score_results
from evaluation.synthetic_keypoints import write_dataset
from pose.backends.agreement import ReferencePeople, agreement, keypoints_from_heatmaps, reference_people

logger = logging.getLogger(__name__)

# The seeds of tools/make_trained_checkpoint.py (validation: 2); reference and calibration figures are new ones.
SYNTHETIC_VAL_SEED, SYNTHETIC_REFERENCE_SEED, SYNTHETIC_CALIBRATION_SEED = 2, 3, 4
SYNTHETIC_VAL_IMAGES, SYNTHETIC_REFERENCE_IMAGES, SYNTHETIC_CALIBRATION_IMAGES = 128, 32, 32


@dataclass(frozen=True)
class ValidationSet:
    """A COCO-format keypoint set: annotation file and image folder."""

    annotation: Path
    images: Path


@dataclass(frozen=True)
class SyntheticSets:
    """The trained test network's own distribution: validation set, reference people, calibration people."""

    validation: ValidationSet
    reference: ValidationSet
    calibration: ValidationSet


def synthetic_sets(folder: str | os.PathLike) -> SyntheticSets:
    """Write the synthetic stick-figure sets under `folder` (seeded: the same files every time)."""
    folder = Path(folder)
    sets = {}
    for split, count, seed in (("val", SYNTHETIC_VAL_IMAGES, SYNTHETIC_VAL_SEED),
                               ("reference", SYNTHETIC_REFERENCE_IMAGES, SYNTHETIC_REFERENCE_SEED),
                               ("calibration", SYNTHETIC_CALIBRATION_IMAGES, SYNTHETIC_CALIBRATION_SEED)):
        annotation = write_dataset(folder, split, count, seed)
        sets[split] = ValidationSet(annotation, folder / "images" / split)
    return SyntheticSets(sets["val"], sets["reference"], sets["calibration"])


def people_of(dataset: ValidationSet, input_size: tuple[int, int], color_rgb: bool = True) -> ReferencePeople:
    """The annotated people of a COCO-format set as `ReferencePeople` for a network of `input_size` (w, h)."""
    return reference_people(input_size, color_rgb, folder=dataset.annotation.parent,
                            annotations_name=dataset.annotation.name, images=dataset.images)


def coco_ap(estimator, dataset: ValidationSet) -> float:
    """COCO keypoint AP (0-1) of `estimator` on the ground-truth boxes of `dataset`, as `coco eval --gt-boxes`."""
    annotation = load_annotation(dataset.annotation)
    boxes = GroundTruthDetector(dataset.annotation, official_cleaning=True)
    results = predict_coco(estimator, annotation, dataset.images, boxes, progress=False)
    return score_results(results, annotation).stats["AP"]


def with_runtime(estimator, runtime):
    """A shallow copy of `estimator` running `runtime` instead (same crops, flip test and decoding)."""
    other = copy.copy(estimator)
    other.runtime = runtime
    return other


def accuracy_rows(estimator, runtimes: dict, people: ReferencePeople, dataset: ValidationSet | None) -> list[dict]:
    """One row per runtime, eager fp32 (`estimator.runtime`) first: AP on `dataset` (None: skipped) and OKS to eager.

    runtimes: {name: runtime} to compare with the estimator's own runtime, which must be eager fp32.
    """
    input_size = estimator.input_size
    reference_xy = keypoints_from_heatmaps(estimator.runtime(people.crops), input_size)
    rows = []
    for name, runtime in {"torch": estimator.runtime, **runtimes}.items():
        row = {"backend": name, **agreement(reference_xy, keypoints_from_heatmaps(runtime(people.crops), input_size),
                                            people)}
        if dataset is not None:
            row["ap"] = 100 * coco_ap(with_runtime(estimator, runtime), dataset)
            row["ap_loss"] = rows[0]["ap"] - row["ap"] if rows else 0.0
        logger.info("%s: %s", name, ", ".join(f"{key} {value:.4g}" for key, value in row.items()
                                              if isinstance(value, float)))
        rows.append(row)
    return rows
