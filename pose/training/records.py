"""Annotation files to training samples (`PersonRecord`), as the official data sets build their `db`.

COCO format (lib/dataset/coco.py, `_load_coco_keypoint_annotation_kernal`),
read through pycocotools: per image, the non-crowd annotations of the keypoint
category; the box is cleaned the official way (`core.boxes.clean_ground_truth_box`,
dropped when the annotation area is not > 0); people without any labelled
keypoint are dropped; visibility v in {1, 2} becomes 1; the box becomes
(center, scale) with the aspect-ratio fix and the 1.25 enlargement.

MPII format (lib/dataset/mpii.py): a json list of {image, center, scale,
joints, joints_vis}; center y += 15 * scale, scale *= 1.25, then center and
joints -= 1 (MATLAB 1-based to 0-based).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from core.boxes import clean_ground_truth_box
from core.io import read_json
from pose.training.layouts import KeypointLayout, layout_from_category
from pose.transforms import box_to_center_scale

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PersonRecord:
    """One training sample: a person in an image.

    Attributes:
        image_path: the image file.
        center: (2,) float32 image px; scale: (2,) float32 units of 200 px (enlarged).
        joints: (K, 3) float64 image px (x, y, 0), as the official `joints_3d` (the records
            keep the official dataset code's names, joints/joints_vis, so the two read side by side).
        joints_vis: (J, 3) float64 visibility (v, v, 0) with v in {0, 1}.
    """

    image_path: str
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    joints_vis: np.ndarray


def keypoint_category(annotation: dict, source: str) -> dict:
    """The category whose people are trained on: id 1 if it has keypoints, else the only keypoint category."""
    categories = [c for c in annotation.get("categories", []) if c.get("keypoints")]
    person = [c for c in categories if c.get("id") == 1]
    if person:
        return person[0]
    if len(categories) == 1:
        return categories[0]
    raise ValueError(f"{source}: expected one keypoint category (or category id 1), found {len(categories)}")


def coco_records(
    annotation_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    aspect_ratio: float,
    layout: KeypointLayout | None = None,
) -> tuple[list[PersonRecord], KeypointLayout]:
    """Training samples of a COCO-format keypoint file and the layout of its keypoints.

    Args:
        annotation_path: COCO keypoint json; images_dir: folder of its `file_name`s.
        aspect_ratio: network input width / height (box aspect fix).
        layout: keypoint layout to use; None takes it from the keypoint category.

    Raises ValueError naming the file when it is not a COCO keypoint file or its
    keypoint count differs from `layout`.
    """
    annotation_path = Path(annotation_path)
    annotation = read_json(annotation_path, "annotation file")
    if not isinstance(annotation, dict) or not all(isinstance(annotation.get(k), list) for k in ("images", "annotations", "categories")):
        raise ValueError(f"{annotation_path} is not a COCO annotation file (needs 'images', 'annotations', 'categories')")
    category = keypoint_category(annotation, str(annotation_path))
    layout = layout or layout_from_category(category, str(annotation_path))
    if len(category["keypoints"]) != layout.num_keypoints:
        raise ValueError(
            f"{annotation_path}: category {category.get('name')!r} has {len(category['keypoints'])} keypoints, "
            f"the keypoint layout {layout.num_keypoints}"
        )
    coco = COCO()
    coco.dataset = annotation
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    num_keypoints = layout.num_keypoints
    records: list[PersonRecord] = []
    for image_id in coco.getImgIds():
        image = coco.loadImgs(image_id)[0]
        width, height = int(image["width"]), int(image["height"])
        for item in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)):
            if int(item.get("category_id", -1)) != int(category["id"]):
                continue
            keypoints = item.get("keypoints") or []
            if not keypoints or max(keypoints) == 0:
                continue
            box = clean_ground_truth_box(item["bbox"], width, height, area=float(item.get("area", item["bbox"][2] * item["bbox"][3])))
            if box is None:
                continue
            points = np.asarray(keypoints, dtype=np.float64).reshape(num_keypoints, 3)
            joints = np.zeros((num_keypoints, 3), np.float64)
            joints[:, :2] = points[:, :2]
            visible = np.minimum(points[:, 2], 1.0)
            joints_vis = np.stack([visible, visible, np.zeros(num_keypoints)], axis=1)
            center, scale = box_to_center_scale(box, aspect_ratio)
            records.append(PersonRecord(str(Path(images_dir) / image["file_name"]), center, scale, joints, joints_vis))
    logger.info("%s: %d people for training", annotation_path, len(records))
    return records, layout


def mpii_records(annotation_path: str | os.PathLike, images_dir: str | os.PathLike,
                 num_keypoints: int = 16) -> list[PersonRecord]:
    """Training samples of an official MPII json (`annot/train.json`)."""
    annotation_path = Path(annotation_path)
    items = read_json(annotation_path, "MPII annotation file")
    if not isinstance(items, list):
        raise ValueError(f"{annotation_path}: expected a list of people")
    records = []
    for position, item in enumerate(items):
        try:
            center = np.array(item["center"], dtype=np.float64)
            scale_value = float(item["scale"])
            joints_xy = np.array(item["joints"], dtype=np.float64).reshape(num_keypoints, 2)
            vis = np.array(item["joints_vis"], dtype=np.float64).reshape(num_keypoints)
            image_name = item["image"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{annotation_path}: entry {position} is not an MPII person ({error})") from None
        if center[0] != -1:
            # Official: move the centre down a little and enlarge, to cover the legs.
            center[1] = center[1] + 15 * scale_value
            scale_value = scale_value * 1.25
        center = (center - 1).astype(np.float32)
        joints = np.zeros((num_keypoints, 3), np.float64)
        joints[:, :2] = joints_xy - 1
        joints_vis = np.stack([vis, vis, np.zeros(num_keypoints)], axis=1)
        scale = np.array([scale_value, scale_value], dtype=np.float32)
        records.append(PersonRecord(str(Path(images_dir) / image_name), center, scale, joints, joints_vis))
    logger.info("%s: %d people for training", annotation_path, len(records))
    return records


__all__ = ["PersonRecord", "coco_records", "keypoint_category", "mpii_records"]
