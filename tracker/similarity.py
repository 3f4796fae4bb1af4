"""Pairwise similarity between poses: vectorised OKS and box IoU matrices.

All functions work on whole sets of poses at once (no Python loop over pairs),
so the tracker's per-frame cost stays in the tens of microseconds for tens of
people. Coordinates are frame pixels; boxes are xyxy float32.
"""

from __future__ import annotations

import numpy as np

# COCO per-keypoint OKS sigmas (pycocotools / official HRNet), in COCO joint order:
# nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left before right).
COCO_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89],
    dtype=np.float32,
) / 10.0

SIMILARITY_KINDS = ("oks", "iou", "mix")

# Finite stand-in for "no confident keypoint" extents (finite, so no inf - inf).
_FAR_PX = np.float32(1.0e9)


def boxes_from_keypoints(keypoints: np.ndarray, keypoint_threshold: float) -> np.ndarray:
    """Extent of the confident keypoints of each pose.

    Args:
        keypoints: (N, K, 3) float32 [x, y, confidence], frame pixels.
        keypoint_threshold: keypoints with confidence >= this span the box; a
            pose with fewer than 2 such keypoints uses all its keypoints.

    Returns:
        (N, 4) float32 xyxy boxes in frame pixels.
    """
    n = len(keypoints)
    if n == 0:
        return np.zeros((0, 4), np.float32)
    xy = keypoints[..., :2]
    confident = keypoints[..., 2] >= keypoint_threshold
    confident[confident.sum(axis=1) < 2] = True
    mask = confident[..., None]
    low = np.where(mask, xy, np.inf).min(axis=1)
    high = np.where(mask, xy, -np.inf).max(axis=1)
    return np.concatenate([low, high], axis=1).astype(np.float32)


def box_areas(boxes: np.ndarray, min_area_px2: float = 1.0) -> np.ndarray:
    """(N,) float32 areas of xyxy boxes, at least `min_area_px2` (OKS divides by it)."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    return np.maximum(width * height, min_area_px2).astype(np.float32)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(A, B) float32 intersection over union of xyxy boxes (A, 4) and (B, 4)."""
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros((len(boxes_a), len(boxes_b)), np.float32)
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = width * height
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    return (intersection / np.maximum(union, 1e-9)).astype(np.float32)


def _confident_extent(x: np.ndarray, y: np.ndarray, confident: np.ndarray) -> tuple[np.ndarray, ...]:
    """x1, y1, x2, y2 (each (N,)) of the confident keypoints; rows with none get an inverted box
    (x1 = +_FAR_PX, x2 = -_FAR_PX) that passes no gate.

    x, y, confident: (N, K) contiguous arrays; reducing along the last axis of
    contiguous arrays is several times faster than along the middle axis of (N, K, 2).
    """
    return (np.where(confident, x, _FAR_PX).min(axis=1), np.where(confident, y, _FAR_PX).min(axis=1),
            np.where(confident, x, -_FAR_PX).max(axis=1), np.where(confident, y, -_FAR_PX).max(axis=1))


def _shared_counts(confident_a: np.ndarray, confident_b: np.ndarray) -> np.ndarray:
    """(A, B) int32 number of keypoints confident in both poses.

    Popcount of AND-ed bit masks rather than a float matrix product: BLAS
    threads make a tiny matmul cost milliseconds on a busy machine.
    """
    k = confident_a.shape[1]
    if k > 64:
        return (confident_a[:, None, :] & confident_b[None, :, :]).sum(axis=2, dtype=np.int32)
    weights = np.left_shift(np.uint64(1), np.arange(k, dtype=np.uint64))
    bits_a = (confident_a * weights).sum(axis=1, dtype=np.uint64)
    bits_b = (confident_b * weights).sum(axis=1, dtype=np.uint64)
    return np.bitwise_count(bits_a[:, None] & bits_b[None, :]).astype(np.int32)


def _paired_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(P,) IoU of row-aligned box pairs (P, 4) and (P, 4)."""
    width = np.clip(np.minimum(boxes_a[:, 2], boxes_b[:, 2]) - np.maximum(boxes_a[:, 0], boxes_b[:, 0]), 0, None)
    height = np.clip(np.minimum(boxes_a[:, 3], boxes_b[:, 3]) - np.maximum(boxes_a[:, 1], boxes_b[:, 1]), 0, None)
    intersection = width * height
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    return intersection / np.maximum(area_a + area_b - intersection, 1e-9)


def oks_matrix(
    keypoints_a: np.ndarray,
    keypoints_b: np.ndarray,
    areas_a: np.ndarray,
    areas_b: np.ndarray,
    sigmas: np.ndarray = COCO_SIGMAS,
    keypoint_threshold: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Object Keypoint Similarity of every pose in A with every pose in B.

    OKS = mean over the keypoints confident in both poses of
    exp(-d^2 / (2 * s^2 * (2 sigma_k)^2)), with s^2 the mean of the two box
    areas (the COCO formula, with the box area as the scale as MMPose does).

    Only pairs whose confident-keypoint extents come within 1.2 s of each other
    are evaluated: beyond that every keypoint distance exceeds 1.2 s and OKS is
    below 1e-6 even for the widest COCO sigma, so it is set to 0. The work is
    O(A * B) for the gate plus O(pairs * K), all vectorised.

    Args:
        keypoints_a: (A, K, 3) float32 [x, y, confidence], frame pixels.
        keypoints_b: (B, K, 3) float32, same layout.
        areas_a: (A,) float32 scale areas in px^2 (usually box areas).
        areas_b: (B,) float32.
        sigmas: (K,) per-keypoint sigmas (COCO by default).
        keypoint_threshold: keypoints with confidence below it are left out.

    Returns:
        oks: (A, B) float32 in [0, 1]; 0 where no keypoint is shared.
        shared: (A, B) int32 number of keypoints confident in both poses.
    """
    num_a, num_b = len(keypoints_a), len(keypoints_b)
    oks = np.zeros((num_a, num_b), np.float32)
    if num_a == 0 or num_b == 0:
        return oks, np.zeros((num_a, num_b), np.int32)
    xa, ya = np.ascontiguousarray(keypoints_a[..., 0]), np.ascontiguousarray(keypoints_a[..., 1])
    xb, yb = np.ascontiguousarray(keypoints_b[..., 0]), np.ascontiguousarray(keypoints_b[..., 1])
    confident_a = keypoints_a[..., 2] >= keypoint_threshold
    confident_b = keypoints_b[..., 2] >= keypoint_threshold
    shared = _shared_counts(confident_a, confident_b)
    scale = 0.5 * (np.asarray(areas_a, np.float32)[:, None] + np.asarray(areas_b, np.float32)[None, :])
    ax1, ay1, ax2, ay2 = _confident_extent(xa, ya, confident_a)
    bx1, by1, bx2, by2 = _confident_extent(xb, yb, confident_b)
    reach = 1.2 * np.sqrt(scale)
    gap_x = np.maximum(ax1[:, None] - bx2[None, :], bx1[None, :] - ax2[:, None])
    gap_y = np.maximum(ay1[:, None] - by2[None, :], by1[None, :] - ay2[:, None])
    near = (gap_x < reach) & (gap_y < reach)
    near &= shared > 0
    rows, columns = np.nonzero(near)
    if len(rows):
        sigmas = np.asarray(sigmas, np.float32)
        inverse_variance = (1.0 / (8.0 * sigmas * sigmas)).astype(np.float32)  # 1 / (2 (2 sigma)^2)
        dx = xa[rows] - xb[columns]
        dy = ya[rows] - yb[columns]
        exponent = (dx * dx + dy * dy) * inverse_variance
        exponent /= scale[rows, columns][:, None]
        similarity = np.exp(-exponent)
        similarity *= confident_a[rows] & confident_b[columns]
        oks[rows, columns] = similarity.sum(axis=1) / shared[rows, columns]
    return oks, shared


def pose_similarity(
    keypoints_a: np.ndarray,
    boxes_a: np.ndarray,
    areas_a: np.ndarray,
    keypoints_b: np.ndarray,
    boxes_b: np.ndarray,
    areas_b: np.ndarray,
    *,
    kind: str = "oks",
    oks_weight: float = 0.5,
    sigmas: np.ndarray = COCO_SIGMAS,
    keypoint_threshold: float = 0.3,
    min_shared_keypoints: int = 3,
) -> np.ndarray:
    """(A, B) float32 similarity used for matching, in [0, 1].

    kind "oks": OKS on confident keypoints; a pair sharing fewer than
    `min_shared_keypoints` confident keypoints falls back to box IoU (OKS on
    one or two joints says little about identity). "iou": box IoU only.
    "mix": oks_weight * (OKS with fallback) + (1 - oks_weight) * IoU.
    """
    if kind not in SIMILARITY_KINDS:
        raise ValueError(f"similarity kind must be one of {SIMILARITY_KINDS}, got {kind!r}")
    if kind == "iou":
        return iou_matrix(boxes_a, boxes_b)
    oks, shared = oks_matrix(keypoints_a, keypoints_b, areas_a, areas_b, sigmas, keypoint_threshold)
    if kind == "mix":
        iou = iou_matrix(boxes_a, boxes_b)
        oks = np.where(shared >= min_shared_keypoints, oks, iou)
        return (oks_weight * oks + (1.0 - oks_weight) * iou).astype(np.float32)
    # Box IoU only for the (usually few) pairs that need the fallback.
    rows, columns = np.nonzero(shared < min_shared_keypoints)
    if len(rows):
        oks[rows, columns] = _paired_iou(boxes_a[rows], boxes_b[columns])
    return oks
