"""Keypoint sets of the HRNet datasets: names, flip pairs, OKS sigmas, skeleton edges.

All indices are 0-based. Flip pairs and sigmas are the official HRNet / COCO
values (FACTS sections 4, 9, 10); the COCO skeleton is the one of the official
demo. Drawing code that needs 1-based edges converts at its own boundary.

"posetrack" is the PoseTrack 2018 layout that PoseTrack-fine-tuned models
(HRNet's and Simple Baselines' PoseTrack entries) predict: COCO's order with the
eyes replaced by head_bottom and head_top, which are not a left/right pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeypointSet:
    """Metadata of one keypoint layout.

    Attributes:
        name: dataset name ("coco" or "mpii").
        keypoint_names: one name per keypoint, in network output order.
        flip_pairs: (left, right) keypoint index pairs swapped by a horizontal mirror.
        skeleton: (a, b) keypoint index pairs to connect when drawing.
        sigmas: (K,) float64 per-keypoint OKS sigmas, or None when the dataset has none.
    """

    name: str
    keypoint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: np.ndarray | None

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)


COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
COCO_SKELETON = (
    (1, 3), (1, 0), (2, 4), (2, 0), (0, 5), (0, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)


# COCO's per-keypoint OKS constants as the official code writes them; the sigma is x / 10.
COCO_SIGMAS_X10 = (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89)


def coco_sigmas(dtype=np.float64) -> np.ndarray:
    """(17,) COCO OKS sigmas, computed as the official code does (x / 10, in `dtype` arithmetic)."""
    return np.array(COCO_SIGMAS_X10, dtype=dtype) / 10.0


MPII_KEYPOINT_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)
MPII_FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
MPII_SKELETON = (
    (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
    (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
)


POSETRACK_KEYPOINT_NAMES = ("nose", "head_bottom", "head_top") + COCO_KEYPOINT_NAMES[3:]
POSETRACK_FLIP_PAIRS = COCO_FLIP_PAIRS[1:]
POSETRACK_SKELETON = (
    (2, 0), (0, 1), (1, 5), (1, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)


def keypoint_set(dataset_name: str, num_keypoints: int | None = None) -> KeypointSet:
    """The keypoint set of a dataset ("coco", "posetrack" or "mpii", case-insensitive).

    Raises ValueError for an unknown dataset or a keypoint count that does not match it.
    """
    key = dataset_name.lower()
    if key == "coco":
        found = KeypointSet("coco", COCO_KEYPOINT_NAMES, COCO_FLIP_PAIRS, COCO_SKELETON, coco_sigmas())
    elif key == "posetrack":
        # PoseTrack keeps COCO's OKS sigmas (its head_bottom/head_top take the eyes' values).
        found = KeypointSet("posetrack", POSETRACK_KEYPOINT_NAMES, POSETRACK_FLIP_PAIRS, POSETRACK_SKELETON, coco_sigmas())
    elif key == "mpii":
        found = KeypointSet("mpii", MPII_KEYPOINT_NAMES, MPII_FLIP_PAIRS, MPII_SKELETON, None)
    else:
        raise ValueError(f"unknown dataset {dataset_name!r}: expected 'coco', 'posetrack' or 'mpii'")
    if num_keypoints is not None and num_keypoints != found.num_keypoints:
        raise ValueError(
            f"dataset {dataset_name!r} has {found.num_keypoints} keypoints but the model has {num_keypoints}"
        )
    return found
