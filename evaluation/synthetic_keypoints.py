"""A seeded synthetic COCO-format person-keypoint data set: rendered stick figures with known joints.

For training tests and the small trained checkpoint: every image holds one
figure with the 17 COCO joints in a random pose (limb angles, size, position,
mirror), drawn over a noisy background. Left limbs are warm colours and right
limbs cool ones, and each joint group has its own colour, so left/right is
visible in the pixels (as it is for real people, from the face and the body's
3-D shape). All joints are labelled visible (v = 2) unless outside the image
(v = 0, x = y = 0, as COCO writes unlabelled joints).

numpy + OpenCV only. Everything is in image pixels, x right, y down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from core.skeletons import COCO_KEYPOINT_NAMES, COCO_SKELETON

IMAGE_SIZE_PX = (128, 128)  # (width, height)

# Per-edge colours (BGR): left limbs warm, right limbs cool, torso and head neutral.
_LEFT = {(5, 7): (0, 0, 255), (7, 9): (0, 128, 255), (11, 13): (0, 200, 255), (13, 15): (60, 255, 255)}
_RIGHT = {(6, 8): (255, 0, 0), (8, 10): (255, 160, 0), (12, 14): (255, 255, 0), (14, 16): (160, 255, 120)}
_TORSO = {(5, 6): (255, 255, 255), (11, 12): (200, 200, 200), (5, 11): (0, 255, 0), (6, 12): (255, 0, 255)}
_FACE_COLORS = {0: (255, 255, 255), 1: (0, 0, 200), 2: (200, 0, 0), 3: (0, 120, 255), 4: (255, 120, 0)}


def _pose(rng: np.random.Generator, height_px: float, hip_xy) -> np.ndarray:
    """(17, 2) joints of one figure: a body of `height_px` with random limb angles, mid-hip at `hip_xy`."""
    h = height_px
    lean = rng.normal(0, 0.12)  # radians, whole-body tilt
    up = np.array([np.sin(lean), -np.cos(lean)])
    side = np.array([-up[1], up[0]])  # the figure's right-to-left axis in the image (x right)
    hip = np.asarray(hip_xy, np.float64)
    neck = hip + up * 0.30 * h
    points = np.zeros((17, 2))
    points[5], points[6] = neck + side * 0.11 * h, neck - side * 0.11 * h
    points[11], points[12] = hip + side * 0.07 * h, hip - side * 0.07 * h
    head = neck + up * 0.12 * h + side * rng.normal(0, 0.01) * h
    points[0] = head
    points[1], points[2] = head + up * 0.02 * h + side * 0.025 * h, head + up * 0.02 * h - side * 0.025 * h
    points[3], points[4] = head + side * 0.05 * h, head - side * 0.05 * h

    def limb(start, angle, length):
        return start + length * np.array([np.sin(angle), np.cos(angle)])

    for shoulder, elbow, wrist, sign in ((5, 7, 9, 1), (6, 8, 10, -1)):
        upper = lean + sign * rng.uniform(-0.3, 2.4)
        lower = upper + sign * rng.uniform(-0.2, 2.0)
        points[elbow] = limb(points[shoulder], upper, 0.17 * h)
        points[wrist] = limb(points[elbow], lower, 0.15 * h)
    for hip_id, knee, ankle, sign in ((11, 13, 15, 1), (12, 14, 16, -1)):
        thigh = lean + sign * rng.uniform(-0.4, 0.9)
        shin = thigh - sign * rng.uniform(0.0, 1.0)
        points[knee] = limb(points[hip_id], thigh, 0.24 * h)
        points[ankle] = limb(points[knee], shin, 0.23 * h)
    if rng.random() < 0.5:  # seen from the back: the figure's left is on the image left
        centre = points[:, 0].mean()
        points[:, 0] = 2 * centre - points[:, 0]
    return points


def render_figure(rng: np.random.Generator, size_px=IMAGE_SIZE_PX) -> tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3) uint8 BGR and its (17, 3) COCO keypoints [x, y, v]."""
    width, height = size_px
    image = rng.integers(0, 90, size=(height // 8, width // 8, 3), dtype=np.uint8)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    image = np.clip(image.astype(np.int16) + rng.integers(-20, 20, size=image.shape), 0, 255).astype(np.uint8)
    body_height = rng.uniform(0.55, 0.85) * height
    hip = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.45, 0.6) * height)
    points = _pose(rng, body_height, hip)
    thickness = max(2, int(round(body_height / 25)))
    for edges in (_TORSO, _LEFT, _RIGHT):
        for (a, b), color in edges.items():
            cv2.line(image, tuple(int(round(v)) for v in points[a]), tuple(int(round(v)) for v in points[b]),
                     color, thickness, cv2.LINE_AA)
    cv2.circle(image, tuple(int(round(v)) for v in points[0]), int(body_height * 0.06), (180, 180, 180), -1, cv2.LINE_AA)
    for joint, color in _FACE_COLORS.items():
        cv2.circle(image, tuple(int(round(v)) for v in points[joint]), max(1, thickness // 2 + 1), color, -1, cv2.LINE_AA)
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    keypoints = np.zeros((17, 3))
    keypoints[inside, :2] = points[inside]
    keypoints[inside, 2] = 2
    return image, keypoints


def write_dataset(root: str | os.PathLike, split: str, num_images: int, seed: int, size_px=IMAGE_SIZE_PX,
                  keypoint_ids: Sequence[int] | None = None) -> Path:
    """Write `num_images` figures in the official COCO layout: JPEGs in `root/images/<split>/`,
    annotations in `root/annotations/person_keypoints_<split>.json`.

    Returns the annotation path. Image ids are 1..num_images; boxes are the
    visible joints' extent padded by 15 % (at least 4 px); `area` is the box area.
    keypoint_ids: COCO keypoint indices to annotate, in this order (a custom
    keypoint set, e.g. 5 of the 17; the category lists their COCO names and the
    skeleton edges among them); None = all 17. The images and boxes do not change.
    """
    keep = list(range(len(COCO_KEYPOINT_NAMES))) if keypoint_ids is None else [int(i) for i in keypoint_ids]
    position = {joint: order for order, joint in enumerate(keep)}
    root = Path(root)
    image_dir = root / "images" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    width, height = size_px
    for image_id in range(1, num_images + 1):
        image, keypoints = render_figure(rng, size_px)
        file_name = f"{image_id:06d}.jpg"
        cv2.imwrite(str(image_dir / file_name), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        visible = keypoints[:, 2] > 0
        low, high = keypoints[visible, :2].min(0), keypoints[visible, :2].max(0)
        pad = np.maximum((high - low) * 0.15, 4.0)
        x1, y1 = np.maximum(low - pad, 0)
        x2, y2 = np.minimum(high + pad, [width - 1, height - 1])
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        annotations.append({
            "id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "area": float((x2 - x1) * (y2 - y1)),
            "keypoints": [float(v) if i % 3 != 2 else int(v) for i, v in enumerate(keypoints[keep].reshape(-1))],
            "num_keypoints": int(visible[keep].sum()),
        })
    document = {
        "images": images, "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": [COCO_KEYPOINT_NAMES[i] for i in keep],
                        "skeleton": [[position[a] + 1, position[b] + 1] for a, b in COCO_SKELETON
                                     if a in position and b in position]}],
    }
    path = root / "annotations" / f"person_keypoints_{split}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
