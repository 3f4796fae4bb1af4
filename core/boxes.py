"""Box conventions shared by the stages and the file formats.

Boxes are xyxy float32 pixels inside the program; COCO and PoseTrack files
store xywh, converted at the file boundary with `xywh_to_xyxy`.
"""

from __future__ import annotations

import numpy as np

PERSON_CATEGORY_ID = 1  # COCO's person category


def xywh_to_xyxy(boxes_xywh: np.ndarray) -> np.ndarray:
    """(N, 4) [x, y, w, h] -> (N, 4) float32 [x1, y1, x2, y2], same pixels."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1).astype(np.float32)


def clean_ground_truth_box(
    box_xywh, image_width: int, image_height: int, area: float | None = None
) -> np.ndarray | None:
    """Official COCO ground-truth box cleaning (`_load_coco_keypoint_annotation_kernal`).

    x1 = max(0, x), y1 = max(0, y), x2 = min(W-1, x1 + max(0, w-1)),
    y2 = min(H-1, y1 + max(0, h-1)); the result is [x1, y1, x2-x1, y2-y1]
    (one pixel narrower than the annotation).

    Args:
        box_xywh: COCO annotation bbox [x, y, w, h] in image px.
        image_width, image_height: image size in px.
        area: the annotation's own `area` field (segmentation area); the official
            code drops annotations whose area is not > 0. None skips that test.

    Returns:
        (4,) float64 [x, y, w, h], or None when the box is dropped
        (area <= 0, x2 < x1 or y2 < y1).
    """
    if area is not None and not area > 0:
        return None
    x, y, w, h = (float(v) for v in box_xywh[:4])
    x1 = np.max((0, x))
    y1 = np.max((0, y))
    x2 = np.min((image_width - 1, x1 + np.max((0, w - 1))))
    y2 = np.min((image_height - 1, y1 + np.max((0, h - 1))))
    if x2 >= x1 and y2 >= y1:
        return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)
    return None
