"""Do two backends give the same keypoints? Displacement between their decoded heatmap peaks.

The reference images are the COCO val images of the project's test data
(tests/data/coco_mini, 4 images, 14 annotated people) in a checkout, and in an
installed copy, which cannot ship those, the packaged `reference/` folder (a
frame of OpenCV's vtest.avi with 7 hand-boxed people). Their boxes are cropped
as the estimator crops them, with the mirrored crops too
(the flip test's input). A backend agrees with the reference when the mean
keypoint displacement is under `MEAN_PX_LIMIT` and at least `WITHIN_2PX_MIN`
of the keypoints are within 2 px (network input px: the crop's frame).

Only meaningful with weights that have learned something: random weights
give near-flat heatmaps whose argmax jumps for any rounding difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.io import read_image
from pose.codec import get_max_preds, quarter_offset
from pose.transforms import boxes_to_centers_scales, network_input

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "coco_mini"
REFERENCE_ANNOTATIONS = "test_coco.json"
PACKAGED_REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
PACKAGED_REFERENCE_ANNOTATIONS = "people.json"
MEAN_PX_LIMIT = 0.5
WITHIN_2PX_MIN = 0.99


def reference_people() -> tuple[Path, str]:
    """(folder, COCO-format annotation file name) of the reference people: the checkout's, else the packaged ones."""
    if (REFERENCE_DIR / REFERENCE_ANNOTATIONS).is_file():
        return REFERENCE_DIR, REFERENCE_ANNOTATIONS
    return PACKAGED_REFERENCE_DIR, PACKAGED_REFERENCE_ANNOTATIONS


def reference_images(folder: Path | None = None, annotations_name: str = REFERENCE_ANNOTATIONS
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(BGR image, (N, 4) float64 xywh px person boxes)] of the reference images that have people, by image id.

    folder: None: `reference_people()`. Raises FileNotFoundError when the images are not there.
    """
    if folder is None:
        folder, annotations_name = reference_people()
    annotations = json.loads((folder / annotations_name).read_text())
    files = {image["id"]: image["file_name"] for image in annotations["images"]}
    people = []
    for image_id, file_name in sorted(files.items()):
        boxes = [a["bbox"] for a in annotations["annotations"] if a["image_id"] == image_id and a["bbox"][2] > 1]
        if boxes:
            people.append((read_image(folder / file_name), np.asarray(boxes, np.float64)))
    return people


def reference_crops(input_size: tuple[int, int], color_rgb: bool = True, folder: Path | None = None,
                    annotations_name: str = REFERENCE_ANNOTATIONS) -> np.ndarray:
    """(2N, 3, h, w) float32 normalised crops of the N people of `reference_images`, then their mirror images."""
    batches = []
    for image, boxes in reference_images(folder, annotations_name):
        centers, scales = boxes_to_centers_scales(boxes, input_size[0] / input_size[1], "xywh")
        batches.append(network_input(image, centers, scales, input_size, color_rgb))
    batch = np.concatenate(batches, axis=0)
    return np.concatenate([batch, np.ascontiguousarray(batch[..., ::-1])], axis=0)


def keypoints_from_heatmaps(heatmaps: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """(N, J, h, w) heatmaps -> (N, J, 2) float32 keypoints in network input px (argmax + quarter offset)."""
    coords, _ = get_max_preds(heatmaps)
    coords = quarter_offset(heatmaps, coords)
    stride = np.array([input_size[0] / heatmaps.shape[3], input_size[1] / heatmaps.shape[2]], np.float32)
    return coords * stride


def agreement(reference_xy: np.ndarray, xy: np.ndarray) -> dict[str, float]:
    """Mean, max displacement (px) and share of keypoints within 2 px between two (N, J, 2) keypoint arrays."""
    distance = np.linalg.norm(np.asarray(xy, np.float64) - np.asarray(reference_xy, np.float64), axis=-1)
    return {"mean_px": float(distance.mean()), "max_px": float(distance.max()),
            "within_2px": float((distance <= 2.0).mean()), "keypoints": int(distance.size)}


def agrees(metrics: dict[str, float]) -> bool:
    """True when `agreement` metrics are within the limits (mean < MEAN_PX_LIMIT, >= WITHIN_2PX_MIN within 2 px)."""
    return metrics["mean_px"] < MEAN_PX_LIMIT and metrics["within_2px"] >= WITHIN_2PX_MIN
