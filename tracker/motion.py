"""Constant-velocity motion of whole poses, vectorised over tracks.

A pose moves as one rigid translation per frame (the limbs' own motion is
small next to it and too noisy to extrapolate joint by joint). The velocity is
an exponentially smoothed measurement, a one-state Kalman filter with a fixed
gain; while a track coasts through misses its velocity decays, so a person who
stops or turns behind an occluder is not pushed far away.

The velocity is kept net of camera motion, and the camera's shift is itself
estimated from the tracks' predictions: a common error of all velocities is
then absorbed by the camera estimate and nothing pulls it back, so on a still
scene with jittery poses it wanders without bound (issue 14: -113 px/frame
after 500 frames of a looped clip, and every ID lost at the next missed
detection). So a velocity is bounded by what the track was seen to move:
its length is at most that of the average observed image displacement
(`image_motion`: camera motion included, exponentially smoothed over about
`velocity_bound_frames` frames) plus `velocity_bound_margin_px`. On a person
who stands still or sways back and forth that average stays near the jitter;
on a walker it is the walking speed, and the bound does not bite.
"""

from __future__ import annotations

import numpy as np

from tracker.similarity import PoseSet

MOTION_MODELS = ("none", "constant_velocity")


def box_shift(shift: np.ndarray) -> np.ndarray:
    """(..., 4) xyxy offset for an (..., 2) xy shift (np.tile is a slow Python wrapper)."""
    return np.concatenate([shift, shift], axis=-1)


def shift_boxes(boxes: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(T, 4) xyxy boxes moved by (T, 2) xy shifts: both corners in one add."""
    return (boxes.reshape(-1, 2, 2) + shift[:, None, :]).reshape(-1, 4)


def predict_poses(last: PoseSet, boxes: np.ndarray, camera_shift: np.ndarray | None, velocity: np.ndarray | None,
                  steps: np.ndarray | None) -> tuple[PoseSet, np.ndarray]:
    """Predicted poses and (T, 4) boxes in this frame: each track's last observation
    moved by the camera shift since it was observed and by its velocity.

    camera_shift: (T, 2) px, or None without camera compensation.
    velocity: (T, 2) px/frame and steps: (T,) frames of travel (`coast_steps` of
        the frames since the observation), or None without a motion model.
    With neither, the last poses and boxes themselves are returned (read-only from here on).
    """
    if camera_shift is None and velocity is None:
        return last, boxes
    shift = camera_shift
    if velocity is not None:  # one frame of travel is exactly the velocity
        shift = shift + velocity * steps[:, None]
    return last.shifted(shift), shift_boxes(boxes, shift)


def coast_steps(frames_ahead: np.ndarray, decay: float) -> np.ndarray:
    """(T,) float32 frames of travel at the initial velocity after `frames_ahead` (T,) frames:
    1 + decay + ... + decay^(frames_ahead - 1); decay in (0, 1], 1 is pure constant velocity."""
    frames = np.asarray(frames_ahead, np.float32)
    if decay >= 1.0:
        return frames
    return (1.0 - np.power(np.float32(decay), frames)) / np.float32(1.0 - decay)


def coast_displacement(velocity: np.ndarray, frames_ahead: np.ndarray, decay: float) -> np.ndarray:
    """Displacement after `frames_ahead` frames at a velocity that decays per frame.

    Args:
        velocity: (T, 2) float32 px per frame.
        frames_ahead: (T,) int frames since the pose was observed (>= 1).
        decay: per-frame velocity factor in (0, 1]; 1 is pure constant velocity.

    Returns:
        (T, 2) float32 px: velocity * (1 + decay + ... + decay^(frames_ahead - 1)).
    """
    return (velocity * coast_steps(frames_ahead, decay)[:, None]).astype(np.float32)


def measure_translation(
    previous: np.ndarray,
    current: np.ndarray,
    previous_boxes: np.ndarray,
    current_boxes: np.ndarray,
    keypoint_threshold: float,
) -> np.ndarray:
    """Translation of each pose between two observations.

    The mean displacement of the keypoints confident in both poses; pairs with
    none fall back to the displacement of the box centre.

    Args:
        previous, current: (M, K, 3) float32 [x, y, confidence] px.
        previous_boxes, current_boxes: (M, 4) float32 xyxy px.
        keypoint_threshold: minimum confidence for a keypoint to count.

    Returns:
        (M, 2) float32 px.
    """
    shared = (previous[..., 2] >= keypoint_threshold) & (current[..., 2] >= keypoint_threshold)
    count = shared.sum(axis=1)
    # x and y separately: reductions along the last axis of (M, K) arrays are fast.
    shift_x = ((current[..., 0] - previous[..., 0]) * shared).sum(axis=1)
    shift_y = ((current[..., 1] - previous[..., 1]) * shared).sum(axis=1)
    keypoint_shift = np.stack([shift_x, shift_y], axis=1) / np.maximum(count, 1)[:, None]
    centre_shift = 0.5 * ((current_boxes[:, :2] + current_boxes[:, 2:])
                          - (previous_boxes[:, :2] + previous_boxes[:, 2:]))
    return np.where((count > 0)[:, None], keypoint_shift, centre_shift).astype(np.float32)


def translation_between(
    previous_xy: np.ndarray,
    current_xy: np.ndarray,
    shared: np.ndarray,
    count: np.ndarray,
    previous_boxes: np.ndarray,
    current_boxes: np.ndarray,
) -> np.ndarray:
    """`measure_translation` on pose-major planar poses, bit-identical to it.

    Args:
        previous_xy, current_xy: (M, 2, K) float32 px, per pose its x row then
            its y row (as in `similarity.PoseSet`).
        shared: (M, K) bool, keypoints confident in both poses; count: (M,) its row sums.
        previous_boxes, current_boxes: (M, 4) float32 xyxy px.

    Returns:
        (M, 2) float32 px.
    """
    difference = current_xy - previous_xy
    difference *= shared[:, None, :]
    if count.all():  # the usual case: no pair needs the box-centre fallback (half the numpy calls)
        return (difference.sum(axis=2) / count[:, None]).astype(np.float32, copy=False)
    keypoint_shift = difference.sum(axis=2) / np.maximum(count, 1)[:, None]
    centre_shift = 0.5 * ((current_boxes[:, :2] + current_boxes[:, 2:])
                          - (previous_boxes[:, :2] + previous_boxes[:, 2:]))
    return np.where((count > 0)[:, None], keypoint_shift, centre_shift).astype(np.float32)


def bounded_velocity(velocity: np.ndarray, image_motion: np.ndarray, margin_px: float) -> np.ndarray:
    """(M, 2) float32 `velocity` shortened, where needed, to what the track was
    seen to move: the length of `image_motion` (M, 2), its average observed
    image displacement, plus `margin_px`. All px/frame; the direction is kept."""
    speed = np.sqrt((velocity * velocity).sum(axis=1))
    limit = np.sqrt((image_motion * image_motion).sum(axis=1)) + np.float32(margin_px)
    over = speed > limit
    if not over.any():
        return velocity
    bounded = velocity.copy()
    bounded[over] *= (limit[over] / speed[over])[:, None]
    return bounded


def smooth_velocity(
    velocity: np.ndarray, measured: np.ndarray, first_measurement: np.ndarray, gain: float
) -> np.ndarray:
    """New (M, 2) velocity: the measurement for a track's first one, else v + gain * (measured - v)."""
    blended = velocity + np.float32(gain) * (measured - velocity)
    if not first_measurement.any():
        return blended.astype(np.float32, copy=False)
    return np.where(first_measurement[:, None], measured, blended).astype(np.float32)
