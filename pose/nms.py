"""OKS similarity, OKS-NMS and the official COCO rescoring (FACTS section 9).

These reproduce lib/nms/nms.py and the post-processing of
`COCODataset.evaluate` of the official HRNet code, keep lists included.

Conventions:
- keypoints: (N, J, 3) [x, y, score] in image px (or flattened (N, 3J));
- areas: (N,) the official `area` of a detection, prod(scale * 200) of the
  enlarged, aspect-corrected crop box (`crop_area`), NOT the detector box area.
"""

from __future__ import annotations

import numpy as np

from core.skeletons import coco_sigmas

# The official code uses np.spacing(1) (float64 machine epsilon) as the area guard.
AREA_EPS = np.spacing(1)
SOFT_NMS_MAX_DETECTIONS = 20


def crop_area(scales: np.ndarray) -> np.ndarray:
    """Official detection area: prod(scale * 200) per row.

    Args:
        scales: (N, 2) float32 crop scales (units of 200 px).

    Returns:
        (N,) float32 areas in px^2.
    """
    return np.prod(np.asarray(scales, dtype=np.float32) * 200, 1)


def oks_iou(keypoints_a, keypoints_b, area_a: float, areas_b, sigmas=None,
            keypoint_score_threshold: float | None = None) -> np.ndarray:
    """OKS between one keypoint set and many (official `oks_iou`).

    e_j = d_j^2 / (2 sigma_j)^2 / ((area_a + area_b) / 2 + eps) / 2, OKS = mean_j exp(-e_j).

    Args:
        keypoints_a: (J, 3) or (3J,) [x, y, score] image px.
        keypoints_b: (M, J, 3) or (M, 3J).
        area_a: float; areas_b: (M,) px^2.
        sigmas: (J,) OKS sigmas; None = COCO sigmas.
        keypoint_score_threshold: None (the official evaluation) uses all keypoints. When given,
            the official code's quirk is reproduced: only the keypoints whose score
            in `keypoints_b` exceeds it are used (`list and list` returns the
            second list), the first set's scores are ignored.

    Returns:
        (M,) float64 OKS values.
    """
    a = np.asarray(keypoints_a, dtype=np.float64).reshape(-1)
    b = np.asarray(keypoints_b, dtype=np.float64)
    b = b.reshape(len(b), a.size)
    sigmas = coco_sigmas() if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    variances = (sigmas * 2) ** 2
    areas_b = np.asarray(areas_b, dtype=np.float64).reshape(-1)
    dx = b[:, 0::3] - a[0::3]
    dy = b[:, 1::3] - a[1::3]
    e = (dx**2 + dy**2) / variances / ((area_a + areas_b[:, None]) / 2 + AREA_EPS) / 2
    if keypoint_score_threshold is None:
        return np.sum(np.exp(-e), axis=1) / e.shape[1]
    ious = np.zeros(len(b))
    for row in range(len(b)):
        used = e[row][b[row, 2::3] > keypoint_score_threshold]
        ious[row] = np.sum(np.exp(-used)) / used.shape[0] if used.shape[0] != 0 else 0.0
    return ious


def _prepare(keypoints, scores, areas):
    keypoints = np.asarray(keypoints, dtype=np.float64)
    keypoints = keypoints.reshape(keypoints.shape[0], int(np.prod(keypoints.shape[1:])))
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    if not (len(keypoints) == len(scores) == len(areas)):
        raise ValueError(f"oks nms: {len(keypoints)} keypoint sets, {len(scores)} scores, {len(areas)} areas")
    return keypoints, scores, areas


def oks_nms(keypoints, scores, areas, threshold: float, sigmas=None,
            keypoint_score_threshold: float | None = None) -> list[int]:
    """Official greedy OKS-NMS.

    Take the best remaining detection, drop every other one whose OKS with it
    is > `threshold` (keep <= threshold), repeat.

    Args:
        keypoints: (N, J, 3) image px + score; scores: (N,); areas: (N,) px^2 (`crop_area`).

    Returns:
        kept indices into the inputs, in keep order (best first).
    """
    keypoints, scores, areas = _prepare(keypoints, scores, areas)
    if len(keypoints) == 0:
        return []
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        best = order[0]
        keep.append(int(best))
        overlap = oks_iou(keypoints[best], keypoints[order[1:]], areas[best], areas[order[1:]], sigmas, keypoint_score_threshold)
        order = order[np.where(overlap <= threshold)[0] + 1]
    return keep


def soft_oks_nms(keypoints, scores, areas, threshold: float, sigmas=None,
                 keypoint_score_threshold: float | None = None) -> list[int]:
    """Official soft OKS-NMS: Gaussian rescoring score *= exp(-oks^2 / threshold), at most 20 kept.

    Args: as `oks_nms`.

    Returns:
        kept indices (at most 20), in keep order.
    """
    keypoints, scores, areas = _prepare(keypoints, scores, areas)
    if len(keypoints) == 0:
        return []
    order = scores.argsort()[::-1]
    scores = scores[order]
    keep = []
    while order.size > 0 and len(keep) < SOFT_NMS_MAX_DETECTIONS:
        best = order[0]
        overlap = oks_iou(keypoints[best], keypoints[order[1:]], areas[best], areas[order[1:]], sigmas, keypoint_score_threshold)
        order = order[1:]
        scores = scores[1:] * np.exp(-(overlap**2) / threshold)
        resort = scores.argsort()[::-1]
        order = order[resort]
        scores = scores[resort]
        keep.append(int(best))
    return keep


def rescore(keypoint_scores, box_scores, keypoint_score_threshold: float = 0.2) -> np.ndarray:
    """Official COCO rescoring: box score x mean of the keypoint scores > keypoint_score_threshold (0 if none).

    The keypoint scores are summed one at a time in float32, as the official loop does.

    Args:
        keypoint_scores: (N, J) float32 heatmap maxima; box_scores: (N,) detector scores.

    Returns:
        (N,) float64 rescored detection scores.
    """
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float32)
    box_scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    if keypoint_scores.ndim != 2 or len(keypoint_scores) != len(box_scores):
        raise ValueError(
            f"rescore: keypoint_scores must be (N, J) with N = {len(box_scores)} box scores, got {keypoint_scores.shape}"
        )
    valid = keypoint_scores > keypoint_score_threshold
    # cumsum adds sequentially, matching the official one-keypoint-at-a-time float32 sum
    # (np.sum would use pairwise summation and differ in the last bit).
    summed = np.cumsum(np.where(valid, keypoint_scores, np.float32(0)), axis=1, dtype=np.float32)
    summed = summed[:, -1] if summed.shape[1] else np.zeros(len(box_scores), np.float32)
    count = valid.sum(axis=1)
    mean = np.where(count > 0, summed / np.maximum(count, 1).astype(np.float32), np.float32(0)).astype(np.float32)
    return mean.astype(np.float64) * box_scores


def evaluation_postprocess(
    keypoints,
    box_scores,
    areas,
    image_ids,
    keypoint_score_threshold: float = 0.2,
    oks_nms_threshold: float = 0.9,
    soft: bool = False,
    sigmas=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Official `COCODataset.evaluate` post-processing: rescoring then per-image OKS-NMS.

    Args:
        keypoints: (N, J, 3) [x, y, maxval] image px.
        box_scores: (N,) detector scores; areas: (N,) `crop_area` of each detection.
        image_ids: (N,) image id of each detection.
        keypoint_score_threshold, oks_nms_threshold: TEST.IN_VIS_THRE and TEST.OKS_THRE; soft: TEST.SOFT_NMS.

    Returns:
        kept: (K,) int64 indices of the detections to write, images in order of
        first appearance, within an image in NMS keep order (all of an image's
        detections when NMS keeps none);
        kept_scores: (K,) float64 their rescored scores.
    """
    keypoints = np.asarray(keypoints)
    image_ids = np.asarray(image_ids).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    if not (len(keypoints) == len(image_ids) == len(areas) == len(np.asarray(box_scores).reshape(-1))):
        raise ValueError("evaluation_postprocess: keypoints, box_scores, areas and image_ids differ in length")
    scores = rescore(keypoints[..., 2], box_scores, keypoint_score_threshold)
    nms = soft_oks_nms if soft else oks_nms
    kept: list[int] = []
    _, first = np.unique(image_ids, return_index=True)
    for image_id in image_ids[np.sort(first)]:
        members = np.flatnonzero(image_ids == image_id)
        keep = nms(keypoints[members], scores[members], areas[members], oks_nms_threshold, sigmas)
        kept.extend(int(members[k]) for k in keep) if keep else kept.extend(int(m) for m in members)
    kept_array = np.asarray(kept, dtype=np.int64)
    return kept_array, scores[kept_array]
