"""Person boxes read from a detection file instead of a network.

The file is a COCO results list, the format of the official HRNet test's
`COCO_val2017_detections_AP_H_56_person.json` and of the PoseTrack detection
files: `[{"image_id": int, "category_id": 1, "bbox": [x, y, w, h], "score": float}, ...]`
(a dict holding such a list under "annotations" or "detections" is accepted too).
Boxes are xywh pixels in the file and xyxy float32 pixels in the returned
`Detections`.

Which entries belong to a frame is decided by an `ImageIdLookup`, with these
rules, tried in this order:

1. an annotation file was given (COCO / PoseTrack, its `images` list):
   `Frame.path` is matched against the images' `file_name`, longest trailing
   path match first (".../images/val/012834_mpii_test/000000.jpg" matches
   "images/val/012834_mpii_test/000000.jpg"), then by base name when that base
   name is unique in the file;
2. no annotation file, `Frame.path` set and its stem all digits: the stem is the
   image id (COCO's 12-digit names, "000000000785.jpg" -> 785, as the official
   code parses them);
3. `Frame.path` is None (a video): the image id is `Frame.index` plus
   `index_offset`.

`key="path"` or `key="index"` forces one rule instead of this order.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path, PurePath

import numpy as np

from core.boxes import PERSON_CATEGORY_ID, xywh_to_xyxy
from core.io import read_json
from core.types import Detections, Frame

logger = logging.getLogger(__name__)

_KEYS = ("auto", "path", "index")


class ImageIdLookup:
    """Maps a `Frame` to the integer image id used in detection and annotation files (rules in the module doc)."""

    def __init__(
        self,
        annotation_path: str | os.PathLike | None = None,
        key: str = "auto",
        index_offset: int = 0,
        annotation: dict | None = None,
    ) -> None:
        if key not in _KEYS:
            raise ValueError(f"ImageIdLookup key must be one of {_KEYS}, got '{key}'")
        self.key = key
        self.index_offset = int(index_offset)
        self.annotation_path = None if annotation_path is None else Path(annotation_path)
        self._by_file_name: dict[str, int] = {}
        self._by_base_name: dict[str, int | None] = {}  # None marks a base name shared by several images
        if annotation is None and self.annotation_path is not None:
            annotation = read_json(self.annotation_path)
        if annotation is not None:
            self._index_images(annotation)

    def _index_images(self, annotation: object) -> None:
        source = self.annotation_path or "annotation"
        if not isinstance(annotation, dict) or not isinstance(annotation.get("images"), list):
            raise ValueError(f"{source} has no 'images' list (expected a COCO/PoseTrack annotation file)")
        for position, image in enumerate(annotation["images"]):
            try:
                file_name, image_id = PurePath(image["file_name"]).as_posix(), int(image["id"])
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{source}: images[{position}] needs 'file_name' and an integer 'id'") from error
            self._by_file_name[file_name] = image_id
            base_name = PurePath(file_name).name
            self._by_base_name[base_name] = image_id if base_name not in self._by_base_name else None

    def describe(self, frame: Frame) -> str:
        """How `frame`'s image id is found, in words, for messages about ids that match nothing."""
        use_path = self.key == "path" or (self.key == "auto" and frame.path is not None)
        if not use_path:
            offset = f" + {self.index_offset}" if self.index_offset else ""
            return f"the frame index{offset} (--det-image-key index)"
        if self._by_file_name:
            return f"the image's file name in {self.annotation_path} (--det-image-key path)"
        return "the number in the image's file name (--det-image-key path)"

    def __call__(self, frame: Frame) -> int:
        use_path = self.key == "path" or (self.key == "auto" and frame.path is not None)
        if not use_path:
            return frame.index + self.index_offset
        if frame.path is None:
            raise ValueError(f"Frame {frame.index} of '{frame.source}' has no path; cannot look up its image id by path")
        if self._by_file_name:
            return self._id_from_annotation(frame.path)
        stem = PurePath(frame.path).stem
        if not stem.isdigit():
            raise ValueError(
                f"Cannot get an image id from '{frame.path}': the name is not a number "
                "(give the annotation file that lists the images, e.g. --det-annotations)"
            )
        return int(stem)

    def _id_from_annotation(self, frame_path: str) -> int:
        parts = PurePath(frame_path).parts
        for start in range(len(parts)):
            image_id = self._by_file_name.get(PurePath(*parts[start:]).as_posix())
            if image_id is not None:
                return image_id
        image_id = self._by_base_name.get(parts[-1])
        if image_id is None:
            problem = "is listed several times" if parts[-1] in self._by_base_name else "is not listed"
            raise ValueError(f"Image '{frame_path}' {problem} in the images of {self.annotation_path}")
        return image_id


def _parse_detection_entries(entries: object, path: Path) -> list[dict]:
    if isinstance(entries, dict):
        entries = entries.get("annotations", entries.get("detections"))
    if not isinstance(entries, list):
        raise ValueError(f"{path} is not a detection file: expected a list of {{image_id, bbox, score}} entries")
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image_id" not in entry or "bbox" not in entry:
            raise ValueError(f"{path}: entry {position} needs 'image_id' and 'bbox' (got {entry!r:.120})")
        bbox = entry["bbox"]
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise ValueError(f"{path}: entry {position} bbox must be [x, y, w, h], got {bbox!r}")
    return entries


class FileDetector:
    """Boxes for each frame read from a COCO-results detection file.

    Entries of other categories than person (1) are ignored; an entry with no
    score counts as score 1. Kept: score >= `score_threshold` (the official
    test's IMAGE_THRE rule, 0.0 there), both box sides >= `min_box_size_px`;
    then an optional NMS, and sorted by score (best first, stable) unless
    `sort_by_score` is False, which keeps the file's order (the official
    evaluation's order, which decides ties in its OKS-NMS).
    An image id with no entry gets no boxes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        annotation_path: str | os.PathLike | None = None,
        key: str = "auto",
        index_offset: int = 0,
        score_threshold: float = 0.0,
        min_box_size_px: float = 0.0,
        nms_iou_threshold: float | None = None,
        sort_by_score: bool = True,
    ) -> None:
        self.path = Path(path)
        self.sort_by_score = sort_by_score
        self.lookup = ImageIdLookup(annotation_path, key=key, index_offset=index_offset)
        self.score_threshold = float(score_threshold)
        self.min_box_size_px = float(min_box_size_px)
        self.nms_iou_threshold = nms_iou_threshold
        self._boxes_xywh: dict[int, np.ndarray] = {}
        self._scores: dict[int, np.ndarray] = {}
        self._warned_unknown_id = False
        self.frames_seen = 0
        self.frames_matched = 0
        self._how = ""
        self._load(_parse_detection_entries(read_json(self.path), self.path))

    def __repr__(self) -> str:
        return f"FileDetector({self.path}, {len(self._boxes_xywh)} images, score_threshold={self.score_threshold})"

    def _load(self, entries: list[dict]) -> None:
        grouped: dict[int, list[tuple[list[float], float]]] = {}
        for position, entry in enumerate(entries):
            if int(entry.get("category_id", PERSON_CATEGORY_ID)) != PERSON_CATEGORY_ID:
                continue
            try:
                record = ([float(value) for value in entry["bbox"]], float(entry.get("score", 1.0)))
                image_id = int(entry["image_id"])
            except (TypeError, ValueError) as error:
                raise ValueError(f"{self.path}: entry {position} has a non-numeric image_id, bbox or score") from error
            grouped.setdefault(image_id, []).append(record)
        for image_id, records in grouped.items():
            boxes = np.array([box for box, _ in records], dtype=np.float64)
            scores = np.array([score for _, score in records], dtype=np.float64)
            keep = scores >= self.score_threshold
            if self.min_box_size_px > 0:
                keep &= (boxes[:, 2:] >= self.min_box_size_px).all(axis=1)
            order = np.flatnonzero(keep)
            if self.nms_iou_threshold is not None and len(order) > 1:
                kept = _nms(xywh_to_xyxy(boxes[order]), scores[order], float(self.nms_iou_threshold))
                order = order[np.sort(kept)]  # file order; sorted below when asked
            if self.sort_by_score:
                order = order[np.argsort(-scores[order], kind="stable")]
            self._boxes_xywh[image_id] = boxes[order]
            self._scores[image_id] = scores[order]
        logger.info("%s: %d boxes for %d images", self.path, sum(map(len, self._scores.values())), len(grouped))

    @property
    def image_ids(self) -> list[int]:
        """Image ids that have at least one person entry in the file (before filtering)."""
        return sorted(self._boxes_xywh)

    def boxes_xywh(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The kept boxes of `image_id` as in the file: (N, 4) float64 [x, y, w, h] px and (N,) float64 scores.

        The evaluators use this to build crops from exactly the file's numbers.
        """
        empty = np.zeros((0, 4), np.float64), np.zeros((0,), np.float64)
        if image_id not in self._boxes_xywh:
            return empty
        return self._boxes_xywh[image_id].copy(), self._scores[image_id].copy()

    def detections_for_image_id(self, image_id: int) -> Detections:
        boxes, scores = self.boxes_xywh(image_id)
        return Detections(xywh_to_xyxy(boxes), scores.astype(np.float32), boxes_xywh=boxes)

    def reset(self) -> None:
        """Start counting matched frames afresh (`track` calls it before each input)."""
        self._warned_unknown_id = False
        self.frames_seen = 0
        self.frames_matched = 0

    def _id_range(self) -> str:
        ids = self.image_ids
        return f"{ids[0]}..{ids[-1]}" if ids else "none"

    def unmatched_reason(self) -> str:
        """Why no frame since `reset()` found an entry in the file ("" when one did, or when none was seen).

        Nearly always a wrong frame -> image id mapping, so the message says
        which mapping was used and which ids the file has.
        """
        if self.frames_seen == 0 or self.frames_matched or not self._boxes_xywh:
            return ""  # an empty file is a valid answer: nobody in any frame
        return (f"none of its {self.frames_seen} frames matched an image id of {self.path} (the file's ids: "
                f"{self._id_range()}; a frame's id was {self._how}); choose how ids map with --det-image-key "
                f"path|index, or give the annotation file that lists the images (--det-annotations)")

    def __call__(self, frames: Sequence[Frame]) -> list[Detections]:
        results = []
        for frame in frames:
            image_id = self.lookup(frame)
            self.frames_seen += 1
            self._how = self.lookup.describe(frame)
            if image_id in self._boxes_xywh:
                self.frames_matched += 1
            elif not self._warned_unknown_id and self._boxes_xywh:
                # Usually a wrong frame -> id mapping (e.g. PoseTrack frames without --det-annotations).
                logger.warning(
                    "%s has no entry for image id %d (frame %d, %s; the id is %s; the file's ids: %s); "
                    "such frames get no boxes", self.path, image_id, frame.index, frame.path or "no path",
                    self._how, self._id_range(),
                )
                self._warned_unknown_id = True
            results.append(self.detections_for_image_id(image_id))
        return results


def _nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by torchvision's NMS, best score first."""
    import torch  # noqa: PLC0415 -- only this optional step needs torch
    import torchvision  # noqa: PLC0415 - as torch

    keep = torchvision.ops.nms(torch.from_numpy(boxes_xyxy), torch.from_numpy(scores.astype(np.float32)), iou_threshold)
    return keep.numpy()
