"""Ground-truth person boxes from a COCO / PoseTrack annotation file (for evaluation).

With `official_cleaning=True` (the default) the boxes are selected and cleaned
exactly as the official HRNet test does with TEST.USE_GT_BBOX true
(`COCODataset._load_coco_keypoint_annotation_kernal`):

- crowd annotations are skipped (`getAnnIds(iscrowd=False)`), then
- for bbox [x, y, w, h] in an image of width W, height H:
  x1 = max(0, x), y1 = max(0, y), x2 = min(W - 1, x1 + max(0, w - 1)),
  y2 = min(H - 1, y1 + max(0, h - 1)); the annotation is kept if its `area`
  > 0 and x2 >= x1 and y2 >= y1, and the box becomes [x1, y1, x2 - x1, y2 - y1]
  (one pixel narrower than the annotation);
- only category 1, and only annotations with at least one labeled keypoint
  (`max(keypoints) > 0`).

PoseTrack annotations have no `area`; their bbox w * h stands in for it.
With `official_cleaning=False` every non-crowd person box is returned as annotated.
Each box scores 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.boxes import PERSON_CATEGORY_ID, clean_ground_truth_box, xywh_to_xyxy
from core.io import read_json
from detector.file_detector import ImageIdLookup
from core.types import Detections, Frame


class GroundTruthDetector:
    """Boxes of the annotated people of each frame, looked up like `FileDetector` (see `ImageIdLookup`).

    The annotation file doubles as the image list for the lookup, so frames
    are found by `Frame.path` against `images[].file_name` (or by index with
    `key="index"`).
    """

    def __init__(
        self,
        annotation_path: str | os.PathLike,
        official_cleaning: bool = True,
        key: str = "auto",
        index_offset: int = 0,
    ) -> None:
        self.annotation_path = Path(annotation_path)
        annotation = read_json(self.annotation_path)
        self.lookup = ImageIdLookup(self.annotation_path, key=key, index_offset=index_offset, annotation=annotation)
        self.official_cleaning = official_cleaning
        self._boxes_xywh: dict[int, np.ndarray] = {}
        self._load(annotation)

    def __repr__(self) -> str:
        return f"GroundTruthDetector({self.annotation_path}, official_cleaning={self.official_cleaning})"

    def _load(self, annotation: dict) -> None:
        source = self.annotation_path
        if not isinstance(annotation.get("annotations"), list):
            raise ValueError(f"{source} has no 'annotations' list")
        sizes = {int(image["id"]): (image.get("width"), image.get("height")) for image in annotation["images"]}
        grouped: dict[int, list[list[float]]] = {image_id: [] for image_id in sizes}
        for position, item in enumerate(annotation["annotations"]):
            try:
                image_id, bbox = int(item["image_id"]), [float(value) for value in item["bbox"]]
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{source}: annotations[{position}] needs 'image_id' and a numeric 'bbox'") from error
            if len(bbox) != 4:
                raise ValueError(f"{source}: annotations[{position}] bbox must be [x, y, w, h], got {bbox}")
            if item.get("iscrowd", 0) or int(item.get("category_id", PERSON_CATEGORY_ID)) != PERSON_CATEGORY_ID:
                continue
            if self.official_cleaning:
                if max(item.get("keypoints") or [0]) == 0:
                    continue
                width, height = sizes.get(image_id, (None, None))
                if width is None or height is None:
                    raise ValueError(f"{source}: image {image_id} needs 'width' and 'height' for the GT-box cleaning")
                area = float(item["area"]) if "area" in item else bbox[2] * bbox[3]
                cleaned = clean_ground_truth_box(bbox, int(width), int(height), area=area)
                if cleaned is None:
                    continue
                bbox = [float(v) for v in cleaned]
            grouped.setdefault(image_id, []).append(bbox)
        self._boxes_xywh = {
            image_id: np.array(boxes, dtype=np.float64).reshape(-1, 4) for image_id, boxes in grouped.items()
        }

    @property
    def image_ids(self) -> list[int]:
        """Every image id in the annotation file (in file order)."""
        return list(self._boxes_xywh)

    def boxes_xywh(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) float64 [x, y, w, h] px boxes of `image_id` in annotation order and (N,) float64 scores (all 1)."""
        if image_id not in self._boxes_xywh:
            raise ValueError(f"Image id {image_id} is not in {self.annotation_path}")
        boxes = self._boxes_xywh[image_id].copy()
        return boxes, np.ones(len(boxes), np.float64)

    def detections_for_image_id(self, image_id: int) -> Detections:
        boxes, scores = self.boxes_xywh(image_id)
        return Detections(xywh_to_xyxy(boxes), scores.astype(np.float32), boxes_xywh=boxes)

    def __call__(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self.detections_for_image_id(self.lookup(frame)) for frame in frames]
