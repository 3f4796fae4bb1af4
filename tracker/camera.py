"""Camera-motion compensation: the image shift of the whole scene in one frame.

The median offset between the motion-predicted poses of the tracks seen in
the previous frame and their matched detections is the camera's shift (shake
or pan). The tracker adds the accumulated shift to every prediction, keeps
velocities net of it, and matches again when a shift is large (pairs made
under a shake may be wrong).
"""

from __future__ import annotations

import numpy as np

from tracker.association import DetectionSet, MatchedPairs
from tracker.matching import match_pairs
from tracker.options import TrackerOptions
from tracker.similarity import PoseSet, oks_between, shared_counts

# Fewest matched people from which a camera shift is estimated: with fewer, a
# person's own change of speed cannot be told from camera motion.
MIN_CAMERA_PAIRS = 3
# Below this fraction of previous-frame tracks matched, the camera is assumed to have jolted.
CAMERA_MATCHED_FRACTION = 0.5
# A camera shift larger than this fraction of a person's size triggers a second matching.
CAMERA_REMATCH_SCALE = 0.05
# Matching rounds at most per frame (the first, and one with the shift applied).
CAMERA_ROUNDS = 2


def estimate_camera_shift(predicted: PoseSet, predicted_boxes: np.ndarray, predicted_areas: np.ndarray,
                          detections: DetectionSet, recent: np.ndarray, num_recent: int, matched: MatchedPairs,
                          options: TrackerOptions, exponent_factors: np.ndarray) -> tuple[np.ndarray, bool]:
    """(2,) float32 px image shift of the scene this frame, and whether to match again.

    predicted, predicted_boxes (T, 4), predicted_areas (T,): the motion
    predictions (without flow). recent: (T,) bool tracks seen in the previous
    frame. Usually the first matching paired most of them, and those pairs are
    used at no extra cost. When it paired fewer than `CAMERA_MATCHED_FRACTION`
    of them (a jolt of the camera), people are paired again by greedy OKS with
    a scale `camera_search_scale` times larger. The caller matches again with
    the shift applied when the shift exceeds `CAMERA_REMATCH_SCALE` of a
    person's size. The median shrugs off a wrong pair.
    """
    no_shift = np.zeros(2, np.float32)
    if num_recent < MIN_CAMERA_PAIRS:
        return no_shift, False
    pairs = matched
    if num_recent < len(recent) or detections.low_columns is not None:  # else every pair is recent x high
        keep = recent[matched.rows] & detections.high[matched.columns]
        pairs = MatchedPairs(matched.rows[keep], matched.columns[keep], predicted, detections)
    poses = detections.poses
    if len(pairs.rows) < max(CAMERA_MATCHED_FRACTION * num_recent, MIN_CAMERA_PAIRS):
        recent_rows = recent.nonzero()[0]
        confident = detections.high_columns
        widen = np.float32(options.camera_search_scale ** 2)
        recent_predicted, confident_poses = predicted.take(recent_rows), poses.take(confident)
        similarity = oks_between(recent_predicted, confident_poses, predicted_areas[recent_rows] * widen,
                                 detections.areas[confident] * widen, exponent_factors,
                                 shared_counts(recent_predicted, confident_poses), options.similarity_threshold)
        pair_rows, pair_columns = match_pairs(similarity, options.similarity_threshold, "greedy")
        pairs = MatchedPairs(recent_rows[pair_rows], confident[pair_columns], predicted, detections)
    num_pairs = len(pairs.rows)
    if num_pairs < MIN_CAMERA_PAIRS:
        return no_shift, False
    residual = pairs.translation_from(predicted, predicted_boxes)
    ordered = np.sort(residual, axis=0)  # np.median's Python wrapper costs more than the work
    shift = 0.5 * (ordered[(num_pairs - 1) // 2] + ordered[num_pairs // 2])
    # np.mean's arithmetic (float32 sum, float64 division, float32 result) without its Python wrapper.
    person_scale = float(np.float32(float(np.sqrt(predicted_areas.take(pairs.rows)).sum()) / num_pairs))
    shift_x, shift_y = shift.tolist()
    rematch = max(abs(shift_x), abs(shift_y)) > CAMERA_REMATCH_SCALE * person_scale
    return shift, rematch
