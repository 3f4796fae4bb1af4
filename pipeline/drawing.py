"""Drawing skeletons, track IDs, boxes and trails: the ONE module that calls supervision.

supervision's API moves between minor versions (0.31 renamed
`KeyPoints.confidence` to `keypoint_confidence`, added a `visible` mask, and
its skeleton edges are 1-based), so every call to it stays here, behind
`draw_poses`. The rest of the project uses 0-based skeletons and plain arrays.

Drawing never touches the caller's image: every function returns a new one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np
import supervision as sv

PALETTE = sv.ColorPalette.DEFAULT
UNTRACKED_COLOR = sv.Color(r=255, g=255, b=255)


def color_for_id(track_id: int) -> tuple[int, int, int]:
    """Stable (B, G, R) colour of a track ID (the palette entry track_id mod its length)."""
    return PALETTE.by_idx(int(track_id)).as_bgr()


class Trails:
    """Recent positions per track ID, for drawing motion trails.

    Args:
        max_length: positions kept per track.
        max_idle_frames: a track not updated for this many `update` calls is forgotten.
    """

    def __init__(self, max_length: int = 30, max_idle_frames: int = 30):
        if max_length < 1 or max_idle_frames < 0:
            raise ValueError(f"Trails: max_length must be >= 1 and max_idle_frames >= 0, got {max_length}, {max_idle_frames}")
        self.max_length = max_length
        self.max_idle_frames = max_idle_frames
        self._points: dict[int, deque] = {}
        self._idle: dict[int, int] = {}

    def update(self, track_ids, points) -> None:
        """Add one frame: `points` (N, 2) float px, one per track ID in `track_ids` (N,).

        Non-finite points are skipped (the track is still marked as seen).
        """
        track_ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(track_ids) != len(points):
            raise ValueError(f"Trails.update: {len(track_ids)} track ids but {len(points)} points")
        seen = set()
        for track_id, point in zip(track_ids.tolist(), points):
            seen.add(track_id)
            trail = self._points.setdefault(track_id, deque(maxlen=self.max_length))
            if np.all(np.isfinite(point)):
                trail.append((float(point[0]), float(point[1])))
            self._idle[track_id] = 0
        for track_id in list(self._idle):
            if track_id not in seen:
                self._idle[track_id] += 1
                if self._idle[track_id] > self.max_idle_frames:
                    del self._idle[track_id]
                    del self._points[track_id]

    def points(self, track_id: int) -> np.ndarray:
        """(L, 2) float64 px, oldest first (empty if unknown)."""
        trail = self._points.get(int(track_id))
        return np.array(trail, dtype=np.float64).reshape(-1, 2) if trail else np.zeros((0, 2))

    @property
    def track_ids(self) -> list[int]:
        return list(self._points)

    def reset(self) -> None:
        self._points.clear()
        self._idle.clear()


def trail_anchors(keypoints, scores, boxes=None, keypoint_threshold: float = 0.3, hip_indices=(11, 12)) -> np.ndarray:
    """One point per person to follow with a trail.

    The hip midpoint when both hips are above the threshold (COCO indices 11, 12
    by default; pass None to skip), else the box centre when boxes are given,
    else the mean of the keypoints above the threshold, else NaN.

    Args:
        keypoints: (N, K, 2) px; scores: (N, K); boxes: (N, 4) xyxy px or None.

    Returns:
        (N, 2) float64 px.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    anchors = np.full((len(keypoints), 2), np.nan)
    for i in range(len(keypoints)):
        visible = scores[i] >= keypoint_threshold
        if hip_indices is not None and keypoints.shape[1] > max(hip_indices) and visible[list(hip_indices)].all():
            anchors[i] = keypoints[i, list(hip_indices)].mean(axis=0)
        elif boxes is not None:
            box = np.asarray(boxes[i], dtype=np.float64)
            anchors[i] = (box[:2] + box[2:]) / 2
        elif visible.any():
            anchors[i] = keypoints[i, visible].mean(axis=0)
    return anchors


def _keypoint_boxes(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy extent of the visible keypoints (label anchors when no box is given)."""
    boxes = np.zeros((len(keypoints), 4), np.float32)
    for i in range(len(keypoints)):
        points = keypoints[i][visible[i]] if visible[i].any() else keypoints[i]
        boxes[i, :2] = points.min(axis=0)
        boxes[i, 2:] = points.max(axis=0)
    return boxes


def draw_poses(
    image_bgr: np.ndarray,
    keypoints,
    scores,
    skeleton: Sequence[tuple[int, int]],
    track_ids=None,
    boxes=None,
    keypoint_threshold: float = 0.3,
    show_boxes: bool = False,
    show_labels: bool = True,
    trails: Trails | None = None,
    thickness: int = 2,
    radius: int = 3,
    show_keypoints: bool = True,
    highlight_id: int | None = None,
) -> np.ndarray:
    """Draw skeletons (and optionally IDs, boxes, trails) on a copy of `image_bgr`.

    Args:
        image_bgr: (H, W, 3) uint8 BGR; not modified.
        keypoints: (N, K, 2) image px; scores: (N, K) keypoint confidences.
        skeleton: 0-based (a, b) keypoint index pairs.
        track_ids: (N,) int IDs, or None (untracked: every person in one neutral colour).
        boxes: (N, 4) xyxy px, or None. Used for `show_boxes` and to place ID labels.
        keypoint_threshold: keypoints scoring below it are not drawn, nor their edges.
        show_labels: write "#<id>" above each person (only with track_ids).
        trails: a `Trails` history to draw (the caller updates it).
        show_keypoints: draw a dot on each keypoint (an empty `skeleton` draws no edges).
        highlight_id: the track drawn twice as thick (skeleton, dots and trail), or None.

    Returns:
        a new (H, W, 3) uint8 BGR image.
    """
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"image must be an (H, W, 3) BGR array, got shape {getattr(image_bgr, 'shape', None)}")
    keypoints = np.asarray(keypoints, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    n = len(keypoints) if keypoints.size else 0
    if n and (keypoints.ndim != 3 or keypoints.shape[2] != 2 or scores.shape != keypoints.shape[:2]):
        raise ValueError(
            f"draw_poses: keypoints must be (N, K, 2) and scores (N, K), got {keypoints.shape} and {scores.shape}"
        )
    scene = image_bgr.copy()
    if track_ids is not None:
        track_ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if len(track_ids) != n:
            raise ValueError(f"draw_poses: {n} poses but {len(track_ids)} track ids")
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) != n:
            raise ValueError(f"draw_poses: {n} poses but {len(boxes)} boxes")

    if trails is not None:
        for track_id in trails.track_ids:
            points = trails.points(track_id)
            if len(points) >= 2:
                width = 2 * thickness if track_id == highlight_id else thickness
                cv2.polylines(scene, [np.round(points).astype(np.int32)], False, color_for_id(track_id), width, cv2.LINE_AA)
    if n == 0:
        return scene

    visible = scores >= keypoint_threshold
    # Untracked people (no IDs given, or ID -1 from the tracker) share one
    # neutral colour, the last entry of this palette, and get no label.
    palette = sv.ColorPalette(list(PALETTE.colors) + [UNTRACKED_COLOR])
    untracked = np.ones(n, bool) if track_ids is None else track_ids < 0
    lookup = np.where(untracked, len(PALETTE.colors), 0 if track_ids is None else track_ids % len(PALETTE.colors))
    # supervision's skeleton edges are 1-based.
    edges = [(int(a) + 1, int(b) + 1) for a, b in skeleton]
    for i in range(n):
        color = palette.by_idx(int(lookup[i]))
        person = sv.KeyPoints(xy=keypoints[i:i + 1], keypoint_confidence=scores[i:i + 1], visible=visible[i:i + 1])
        scale = 2 if highlight_id is not None and track_ids is not None and track_ids[i] == highlight_id else 1
        if edges:
            scene = sv.EdgeAnnotator(color=color, thickness=scale * thickness, edges=edges).annotate(scene, person)
        if show_keypoints:
            scene = sv.VertexAnnotator(color=color, radius=scale * radius).annotate(scene, person)

    label_boxes = boxes if boxes is not None else _keypoint_boxes(keypoints, visible)
    detections = sv.Detections(xyxy=label_boxes)
    if show_boxes and boxes is not None:
        scene = sv.BoxAnnotator(color=palette, thickness=thickness).annotate(scene, detections, custom_color_lookup=lookup)
    labelled = ~untracked
    if show_labels and labelled.any():
        scene = sv.LabelAnnotator(color=palette, text_scale=0.5, text_padding=4).annotate(
            scene,
            detections[labelled],
            labels=[f"#{int(t)}" for t in track_ids[labelled]],
            custom_color_lookup=lookup[labelled],
        )
    return scene
