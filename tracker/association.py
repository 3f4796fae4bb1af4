"""Association: one frame's detections against the tracks' predicted poses.

Similarity (tracks x detections) is OKS on confident keypoints with a box-IoU
fallback, box IoU, or a mix (`tracker.similarity`); a lost track's OKS scale
grows with the frames it has been missing, since its predicted pose is less
certain. Three matching stages (greedy best-pair-first or Hungarian,
`tracker.matching`) then pair them:

    a. tracks seen in the previous frame x confident detections;
    b. all still-unmatched tracks (lost ones included) x remaining confident detections;
    c. tracks seen in the previous frame x low-score detections (ByteTrack: a
       partly occluded person often scores low but is still that person).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tracker.matching import match_pairs
from tracker.motion import translation_between
from tracker.options import TrackerOptions
from tracker.similarity import PoseSet, box_areas, similarity_between
from tracker.tracks import NO_ROWS


class DetectionSet:
    """One frame's validated input and the arrays derived from it, each computed once.

    keypoints: (N, K, 3), boxes: (N, 4) xyxy, scores: (N,), float32 px.
    poses: their `PoseSet` (planar x/y, confident mask, extents).
    areas: (N,) float32 box areas px^2 (OKS scale).
    high: (N,) bool, score >= min_score (may match any track and start tracks).
    high_columns: indices of `high`; low_columns: indices of the detections
        scoring in [low_score_floor, min_score) when low-score matching is on, else None.
    """

    __slots__ = ("keypoints", "boxes", "scores", "poses", "areas", "high", "high_columns", "low_columns",
                 "_min_keypoints")

    def __init__(self, keypoints: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                 options: TrackerOptions) -> None:
        self.keypoints, self.boxes, self.scores = keypoints, boxes, scores
        self.poses = PoseSet.from_keypoints(keypoints, options.keypoint_threshold)
        self.areas = box_areas(boxes)
        self.high = scores >= options.min_score
        self.high_columns = self.high.nonzero()[0]
        self.low_columns = None
        if options.low_score_matching and len(self.high_columns) < len(scores):
            low = (~self.high & (scores >= options.low_score_floor)).nonzero()[0]
            self.low_columns = low if len(low) else None
        self._min_keypoints = max(options.min_keypoints, 1)

    def can_start(self) -> np.ndarray:
        """(N,) bool: high score and enough confident keypoints to start a track."""
        return (self.poses.counts() >= self._min_keypoints) & self.high

    def __len__(self) -> int:
        return len(self.scores)


class MatchedPairs:
    """Matched (track row, detection column) pairs, measured twice a frame (the
    camera shift against the predictions, the velocity against the last poses):
    the detection side and the shared-keypoint masks are gathered once, lazily.

    rows, columns: (M,) int64. shared: (M, K) bool keypoints confident in both
    (predictions keep their track's confidences); count: (M,) its row sums.
    xy: (M, 2, K) and boxes: (M, 4) float32 px of the detections.
    """

    __slots__ = ("rows", "columns", "_tracks", "_detections", "shared", "count", "xy", "boxes")

    def __init__(self, rows: np.ndarray, columns: np.ndarray, tracks: PoseSet, detections: DetectionSet) -> None:
        self.rows, self.columns = rows, columns
        self._tracks, self._detections = tracks, detections
        self.shared = None

    def translation_from(self, poses: PoseSet, boxes: np.ndarray) -> np.ndarray:
        """(M, 2) float32 px translation from the track rows of `poses`, `boxes`
        (last poses or predictions of all tracks) to the detections."""
        if self.shared is None:
            detections = self._detections
            self.shared, self.count = self._tracks.shared(detections.poses, self.rows, self.columns)
            self.xy = detections.poses.xy.take(self.columns, axis=0)
            self.boxes = detections.boxes.take(self.columns, axis=0)
        return translation_between(poses.xy.take(self.rows, axis=0), self.xy, self.shared, self.count,
                                   boxes.take(self.rows, axis=0), self.boxes)


def associate(predicted: PoseSet, predicted_boxes: np.ndarray, predicted_areas: np.ndarray, missed: np.ndarray,
              detections: DetectionSet, recent: np.ndarray, num_recent: int, options: TrackerOptions,
              exponent_factors: np.ndarray,
              appearance: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Similarity and the three matching stages.

    predicted, predicted_boxes (T, 4), predicted_areas (T,): the tracks'
    predicted poses in this frame. missed: (T,) frames since each track was
    seen. recent: (T,) bool, tracks seen in the previous frame (num_recent of them).
    appearance: None (keypoint-only tracking), or `appearance(rows, columns)`
    -> (R, C) float32 appearance similarity in [0, 1] (NaN: not comparable) of
    those tracks and detections; see `blend_appearance`.
    Returns matched (M,) track rows and (M,) detection columns.
    """
    num_tracks, num_detections = len(missed), len(detections)
    if num_tracks == 0 or num_detections == 0:
        return NO_ROWS, NO_ROWS
    areas = predicted_areas
    if num_recent < num_tracks:  # growth is exactly 1 for tracks seen last frame
        growth = 1.0 + options.lost_scale_growth * missed.astype(np.float32)
        areas = areas * growth * growth
    similarity = similarity_between(
        predicted, predicted_boxes, areas, detections.poses, detections.boxes, detections.areas,
        kind=options.similarity, oks_weight=options.oks_weight, exponent_factors=exponent_factors,
        min_shared_keypoints=options.min_keypoints, min_similarity=options.similarity_threshold)
    if appearance is not None:
        similarity = blend_appearance(similarity, appearance, options.reid_weight, options.similarity_threshold)
    all_rows = np.arange(num_tracks)
    recent_rows = all_rows if num_recent == num_tracks else recent.nonzero()[0]
    stages = [(recent_rows, detections.high_columns)]
    if num_recent < num_tracks:
        stages.append((all_rows, detections.high_columns))
    if detections.low_columns is not None:
        stages.append((recent_rows, detections.low_columns))
    if len(stages) > 1:  # what each stage takes is kept from the later ones
        track_free = np.ones(num_tracks, bool)
        detection_free = np.ones(num_detections, bool)
    matched_rows, matched_columns = [], []
    for rows, columns in stages:
        if matched_rows:  # a later stage gets what the earlier ones left
            rows, columns = rows[track_free[rows]], columns[detection_free[columns]]
        if len(rows) == 0 or len(columns) == 0:
            continue
        if len(rows) == num_tracks and len(columns) == num_detections:
            stage_rows, stage_columns = match_pairs(similarity, options.similarity_threshold, options.matching)
        else:
            pair_rows, pair_columns = match_pairs(similarity[rows][:, columns], options.similarity_threshold,
                                                  options.matching)
            stage_rows, stage_columns = rows[pair_rows], columns[pair_columns]
        if len(stage_rows) == 0:
            continue
        if len(stages) > 1:
            track_free[stage_rows] = False
            detection_free[stage_columns] = False
        matched_rows.append(stage_rows)
        matched_columns.append(stage_columns)
    if len(matched_rows) == 1:
        return matched_rows[0], matched_columns[0]
    if not matched_rows:
        return NO_ROWS, NO_ROWS
    return np.concatenate(matched_rows), np.concatenate(matched_columns)


def blend_appearance(similarity: np.ndarray, appearance: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     weight: float, threshold: float) -> np.ndarray:
    """(T, N) float32: where a track or a detection has several pairs the pose
    `similarity` allows (>= threshold), those pairs score (1 - weight) * pose +
    weight * appearance, never below the threshold: appearance re-ranks the
    pose's candidates (two people crossing) but neither makes nor breaks a
    match on its own. Uncontested pairs would match the same either way, so
    appearance is only computed for the contested block (usually none)."""
    allowed = similarity >= threshold
    contested = allowed & ((allowed.sum(axis=1) > 1)[:, None] | (allowed.sum(axis=0) > 1)[None, :])
    if not contested.any():
        return similarity
    rows, columns = contested.any(axis=1).nonzero()[0], contested.any(axis=0).nonzero()[0]
    block = similarity[np.ix_(rows, columns)]
    looks = appearance(rows, columns)
    use = (block >= threshold) & ~np.isnan(looks)
    similarity = similarity.copy()
    similarity[np.ix_(rows, columns)] = np.where(use, np.maximum((1.0 - weight) * block + weight * looks, threshold),
                                                 block)
    return similarity
