"""Keypoint propagation by pyramidal Lucas-Kanade optical flow (OpenCV).

Simple Baselines moves each joint of frame k-1 by the optical flow at that
joint (FlowNet2 there; sparse LK here, which costs about a millisecond for a
few hundred points on a CPU). This is the only module that imports cv2.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FlowParameters:
    """window_px: LK window side; levels: pyramid levels above the base;
    max_error: points with a larger LK error (mean abs intensity difference) fail."""

    window_px: int = 21
    levels: int = 3
    max_error: float = 30.0

    def __post_init__(self) -> None:
        if self.window_px < 3 or self.levels < 0:
            raise ValueError(f"flow window must be >= 3 px and levels >= 0, got {self}")


def to_gray(frame: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grayscale of an (H, W, 3) BGR or (H, W) uint8 frame."""
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def propagate_keypoints(
    previous_gray: np.ndarray,
    current_gray: np.ndarray,
    keypoints: np.ndarray,
    parameters: FlowParameters = FlowParameters(),
) -> tuple[np.ndarray, np.ndarray]:
    """Move keypoints from the previous frame into the current one.

    Args:
        previous_gray, current_gray: (H, W) uint8 frames of the same size.
        keypoints: (N, K, 3) float32 [x, y, confidence] in previous-frame px.

    Returns:
        moved: (N, K, 3) float32, positions moved by the flow (unchanged where
            tracking failed), confidence kept.
        tracked: (N, K) bool, True where LK found the point inside the frame.
    """
    n, k = keypoints.shape[:2]
    if n == 0:
        return keypoints.copy(), np.zeros((0, k), bool)
    points = np.ascontiguousarray(keypoints[..., :2].reshape(-1, 1, 2), np.float32)
    size = (parameters.window_px, parameters.window_px)
    new_points, status, error = cv2.calcOpticalFlowPyrLK(
        previous_gray, current_gray, points, None, winSize=size, maxLevel=parameters.levels,
        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
    )
    height, width = current_gray.shape[:2]
    new_points = new_points.reshape(n, k, 2)
    inside = (
        (new_points[..., 0] >= 0) & (new_points[..., 0] < width)
        & (new_points[..., 1] >= 0) & (new_points[..., 1] < height)
    )
    tracked = (status.reshape(n, k) == 1) & (error.reshape(n, k) <= parameters.max_error) & inside
    moved = keypoints.copy()
    moved[..., :2] = np.where(tracked[..., None], new_points, keypoints[..., :2])
    return moved.astype(np.float32), tracked
