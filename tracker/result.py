"""`TrackingResult`: what `PoseTracker.update` returns for one frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.similarity import boxes_from_keypoints


@dataclass(frozen=True)
class TrackingResult:
    """One frame's tracking output.

    ids: (N,) int64 track ID of each input pose, in input order; -1 for an
        input that is not (yet) part of a confirmed track.
    track_ids: (M,) int64 IDs of the output poses: the tracked inputs in input
        order, then the flow-recovered poses.
    keypoints: (M, K, 3) float32 [x, y, confidence] px (One-Euro smoothed when on).
    boxes: (M, 4) float32 xyxy px.
    scores: (M,) float32 detection score (for recovered poses, that of the
        track's last detection).
    detection_index: (M,) int64 input index of each output, -1 for flow-recovered poses.
    """

    ids: np.ndarray
    track_ids: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    detection_index: np.ndarray

    def __post_init__(self) -> None:
        count = len(self.track_ids)
        if not (len(self.keypoints) == len(self.boxes) == len(self.scores) == len(self.detection_index) == count):
            raise ValueError(f"TrackingResult: {count} track IDs, {len(self.keypoints)} poses, {len(self.boxes)} "
                             f"boxes, {len(self.scores)} scores, {len(self.detection_index)} detection indices")

    @classmethod
    def of_inputs(cls, keypoints, ids, boxes=None, scores=None) -> "TrackingResult":
        """Every input pose as an output, in input order, with the given IDs: the
        result of a tracker that only numbers its inputs (a test double, say).

        keypoints: (N, K, 3) [x, y, confidence] px; ids: (N,) int; boxes: (N, 4)
        xyxy px, None for the keypoints' extent; scores: (N,), None for the mean
        keypoint confidence.
        """
        keypoints = np.asarray(keypoints, np.float32)
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(ids) != len(keypoints):
            raise ValueError(f"TrackingResult: {len(ids)} IDs for {len(keypoints)} poses")
        boxes = boxes_from_keypoints(keypoints, 0.0) if boxes is None else np.asarray(boxes, np.float32)
        scores = keypoints[..., 2].mean(axis=1) if scores is None else np.asarray(scores, np.float32)
        return cls(ids, ids, keypoints, boxes.reshape(-1, 4), scores.reshape(-1), np.arange(len(ids), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def propagated(self) -> np.ndarray:
        """(M,) bool: True for the flow-recovered outputs."""
        return self.detection_index < 0
