"""`PoseTracker`: gives every pose a track ID that stays with the same person.

Per frame (all steps vectorised over tracks and detections):

1. Predict every live track's pose in this frame: its last pose moved by its
   constant-velocity estimate (decaying while it coasts) and by the camera
   motion estimated since, or, with flow on, by Lucas-Kanade optical flow from
   the previous frame (Simple Baselines' joint propagation) for the tracks
   seen in that frame.
2. Similarity (tracks x detections): OKS on confident keypoints with a box-IoU
   fallback, box IoU, or a mix. A lost track's OKS scale grows with the frames
   it has been missing, since its predicted pose is less certain.
3. Three matching stages (greedy best-pair-first or Hungarian):
   a. tracks seen in the previous frame x confident detections;
   b. all still-unmatched tracks (lost ones included) x remaining confident detections;
   c. tracks seen in the previous frame x low-score detections (ByteTrack:
      a partly occluded person often scores low but is still that person).
4. Camera compensation: the median offset between predictions and their
   matched detections is the camera's shift; a large one (a shaken camera)
   means the matching is redone with it applied. Velocities are kept net of
   camera motion.
5. With flow on, a confirmed track the detector missed gets its flow-propagated
   pose, unless a shown detection already covers it (OKS-NMS, detections
   first), for up to `flow_max_frames` frames in a row. These recovered poses
   are returned with detection_index -1.
6. Unmatched tracks coast (state LOST) for up to `max_age` frames, then are removed.
   Unmatched confident detections with enough confident keypoints start tracks.

IDs come from a counter owned by each tracker, start at 1, and are never
reused within a video. `reset()` starts a new video: the tracks are dropped
and numbering restarts at 1, so a video's IDs do not depend on what ran before.
An input pose that is not part of a confirmed track (low score, too few
confident keypoints, or a track still TENTATIVE under `min_hits`) gets ID -1.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tracker.matching import match_pairs
from tracker.motion import coast_steps, measure_translation, smooth_velocity, translation_between
from tracker.similarity import (COCO_SIGMAS, PoseSet, box_areas, boxes_from_keypoints,
                                oks_between, oks_exponent_factors, pose_similarity, shared_counts,
                                similarity_between)
from tracker.options import TrackerOptions
from tracker.smoothing import OneEuroParameters, one_euro_step

logger = logging.getLogger(__name__)

# Fewest matched people from which a camera shift is estimated (see _estimate_camera_shift).
_MIN_CAMERA_PAIRS = 3
# Below this fraction of previous-frame tracks matched, the camera is assumed to have jolted.
_CAMERA_MATCHED_FRACTION = 0.5
# A camera shift larger than this fraction of a person's size triggers a second matching.
_CAMERA_REMATCH_SCALE = 0.05
_CAMERA_ROUNDS = 2


_NO_ROWS = np.zeros((0,), np.int64)
_NO_ROWS.flags.writeable = False  # shared empty index: nobody may write into it
_ZERO_CONFIDENCE = np.zeros((1,), np.float32)


def _box_shift(shift: np.ndarray) -> np.ndarray:
    """(..., 4) xyxy offset for an (..., 2) xy shift (np.tile is a slow Python wrapper)."""
    return np.concatenate([shift, shift], axis=-1)


def _shift_boxes(boxes: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(T, 4) xyxy boxes moved by (T, 2) xy shifts: both corners in one add."""
    return (boxes.reshape(-1, 2, 2) + shift[:, None, :]).reshape(-1, 4)


class _Detections:
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
                 options: "TrackerOptions") -> None:
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


class _Pairs:
    """Matched (track row, detection column) pairs, measured twice a frame (the
    camera shift against the predictions, the velocity against the last poses):
    the detection side and the shared-keypoint masks are gathered once, lazily.

    rows, columns: (M,) int64. shared: (M, K) bool keypoints confident in both
    (predictions keep their track's confidences); count: (M,) its row sums.
    xy: (M, 2, K) and boxes: (M, 4) float32 px of the detections.
    """

    __slots__ = ("rows", "columns", "_tracks", "_detections", "shared", "count", "xy", "boxes")

    def __init__(self, rows: np.ndarray, columns: np.ndarray, tracks: PoseSet, detections: _Detections) -> None:
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


class TrackState(enum.IntEnum):
    """TENTATIVE: born but not yet `min_hits` hits (no ID shown yet).
    CONFIRMED: has an ID and was seen (detected or flow-recovered) this frame.
    LOST: has an ID, missed this frame, still kept for re-association.
    REMOVED: gone for good (only seen in logs: removed tracks leave `tracks`)."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    REMOVED = 3


# Plain ints for array comparisons: comparing a numpy array with an IntEnum
# member goes through a slow conversion (several microseconds a call).
_TENTATIVE, _CONFIRMED, _LOST, _REMOVED = (int(state) for state in TrackState)


@dataclass(frozen=True)
class Track:
    """A read-only snapshot of one live track.

    track_id: the ID, or -1 while TENTATIVE.
    keypoints: (K, 3) float32 [x, y, confidence] px, the last observed pose (raw).
    box: (4,) float32 xyxy px.
    score: detection score of the last observation.
    age: frames since birth, counting the birth frame.
    hits: frames the track was matched to a detection.
    time_since_update: frames since the last detection or flow-recovered pose.
    state: TrackState.
    velocity: (2,) float32 px per frame.
    """

    track_id: int
    keypoints: np.ndarray
    box: np.ndarray
    score: float
    age: int
    hits: int
    time_since_update: int
    state: TrackState
    velocity: np.ndarray


@dataclass(frozen=True)
class TrackingResult:
    """What `update_full` returns for one frame.

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

    @property
    def propagated(self) -> np.ndarray:
        """(M,) bool: True for the flow-recovered outputs."""
        return self.detection_index < 0


@dataclass
class _TrackTable:
    """Struct of arrays, one row per live track, so updates are vectorised."""

    ids: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    velocity: np.ndarray
    velocity_known: np.ndarray
    age: np.ndarray
    hits: np.ndarray
    missed: np.ndarray
    propagated: np.ndarray
    state: np.ndarray
    smooth_value: np.ndarray
    smooth_derivative: np.ndarray
    camera_at_update: np.ndarray

    @classmethod
    def empty(cls, num_keypoints: int) -> "_TrackTable":
        return cls.new(np.zeros((0, num_keypoints, 3), np.float32), np.zeros((0, 4), np.float32),
                       np.zeros((0,), np.float32))

    @classmethod
    def new(cls, keypoints: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> "_TrackTable":
        n, k = keypoints.shape[:2]
        return cls(
            ids=np.full(n, -1, np.int64),
            keypoints=keypoints.astype(np.float32, copy=True),
            boxes=boxes.astype(np.float32, copy=True),
            scores=scores.astype(np.float32, copy=True),
            velocity=np.zeros((n, 2), np.float32),
            velocity_known=np.zeros(n, bool),
            age=np.zeros(n, np.int32),
            hits=np.ones(n, np.int32),
            missed=np.zeros(n, np.int32),
            propagated=np.zeros(n, np.int32),
            state=np.full(n, _TENTATIVE, np.int8),
            smooth_value=keypoints[..., :2].astype(np.float32, copy=True),
            smooth_derivative=np.zeros((n, k, 2), np.float32),
            camera_at_update=np.zeros((n, 2), np.float32),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, other: "_TrackTable") -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, np.concatenate([getattr(self, field.name), getattr(other, field.name)]))

    def keep(self, mask: np.ndarray) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name)[mask])


class PoseTracker:
    """Multi-person pose tracker (see the module docstring for the algorithm).

    Use `PoseTracker(**options)` with the fields of `TrackerOptions`, or
    `PoseTracker(TrackerOptions(...))`; `PoseTracker.simple_baseline()` builds
    the greedy-OKS-between-consecutive-frames baseline.
    """

    def __init__(self, options: TrackerOptions | Mapping | None = None, **overrides) -> None:
        valid = {field.name for field in dataclasses.fields(TrackerOptions)}
        if isinstance(options, Mapping):  # e.g. the tracker section of a YAML option file
            overrides = {**options, **overrides}
            options = None
        if options is None:
            options = TrackerOptions()
        if not isinstance(options, TrackerOptions):
            raise ValueError(f"PoseTracker: options must be TrackerOptions or a mapping, got {type(options).__name__}")
        if overrides:
            unknown = sorted(set(overrides) - valid)
            if unknown:
                raise ValueError(f"PoseTracker: unknown option(s) {unknown}; valid options are {sorted(valid)}")
            options = dataclasses.replace(options, **overrides)
        self.options = options
        self._sigmas = COCO_SIGMAS if options.sigmas is None else np.asarray(options.sigmas, np.float32)
        self._num_keypoints = len(self._sigmas)
        self._one_euro = OneEuroParameters(
            options.one_euro_min_cutoff_hz, options.one_euro_beta, options.one_euro_derivative_cutoff_hz)
        self._exponent_factors = oks_exponent_factors(self._sigmas)
        # Coasting distance (in frames of travel) by frames since the last
        # observation: a track is at most max_age + 1 frames ahead.
        self._coast_steps = coast_steps(np.arange(1, options.max_age + 2), options.coast_velocity_decay)
        self._flow_parameters = None
        if options.flow:
            from tracker.flow import FlowParameters  # noqa: PLC0415  (cv2 only when flow is on)

            self._flow_parameters = FlowParameters(options.flow_window_px, options.flow_levels)
        self.reset()

    @classmethod
    def simple_baseline(cls, **overrides) -> "PoseTracker":
        """The simple greedy OKS baseline (see `TrackerOptions.simple_baseline`)."""
        return cls(TrackerOptions.simple_baseline(**overrides))

    def reset(self) -> None:
        """Start a new video: drop all tracks; IDs restart at 1."""
        self._table = _TrackTable.empty(self._num_keypoints)
        self._next_id = 1
        self._previous_gray: np.ndarray | None = None
        self._frame_count = 0
        # Cumulative estimated image shift of the scene since the reset (px).
        self._camera_offset = np.zeros(2, np.float32)

    @property
    def frame_count(self) -> int:
        """Frames seen since the last reset."""
        return self._frame_count

    @property
    def tracks(self) -> list[Track]:
        """Snapshots of the live tracks (tentative, confirmed and lost)."""
        table = self._table
        return [
            Track(int(table.ids[i]), table.keypoints[i].copy(), table.boxes[i].copy(), float(table.scores[i]),
                  int(table.age[i]), int(table.hits[i]), int(table.missed[i]), TrackState(int(table.state[i])),
                  table.velocity[i].copy())
            for i in range(len(table))
        ]

    def update(self, keypoints, boxes=None, scores=None, frame=None) -> np.ndarray:
        """Track one frame and return the (N,) int64 IDs of the input poses (-1: untracked).

        Args:
            keypoints: (N, K, 3) [x, y, confidence] in frame pixels (K = 17 for COCO).
            boxes: (N, 4) xyxy px, or None to use the extent of the confident keypoints.
            scores: (N,) detection scores in [0, 1], or None for the mean keypoint confidence.
            frame: (H, W, 3) uint8 BGR image (or (H, W) gray); only used when flow is on.
        """
        return self._update(keypoints, boxes, scores, frame, full=False)

    def update_full(self, keypoints, boxes=None, scores=None, frame=None) -> TrackingResult:
        """Like `update`, but also returns the output poses, flow-recovered ones included."""
        return self._update(keypoints, boxes, scores, frame, full=True)

    def _update(self, keypoints, boxes, scores, frame, full: bool):
        """One frame; returns the `TrackingResult` when `full`, else only its `ids`
        (the output pose arrays are a dozen numpy calls that `update` would drop)."""
        keypoints, boxes, scores, gray = self._validate(keypoints, boxes, scores, frame)
        options = self.options
        table = self._table
        self._frame_count += 1
        detections = _Detections(keypoints, boxes, scores, options)
        recent = table.missed == 0  # tracks seen in the previous frame
        num_recent = int(np.count_nonzero(recent))
        last = PoseSet.from_keypoints(table.keypoints, options.keypoint_threshold)

        motion_predicted, motion_boxes = self._predict_motion(last)
        motion_areas = box_areas(motion_boxes)
        flow_rows, flow_poses = self._propagate_with_flow(gray)
        predicted, predicted_boxes = self._with_flow(motion_predicted, motion_boxes, flow_rows, flow_poses)
        predicted_areas = motion_areas if predicted_boxes is motion_boxes else box_areas(predicted_boxes)
        matched = _Pairs(*self._associate(predicted, predicted_boxes, predicted_areas, detections, recent,
                                          num_recent), last, detections)
        # Camera compensation: a shake makes the first pairing partly wrong, so
        # the shift is refined from the corrected pairing (at most twice).
        for _ in range(_CAMERA_ROUNDS if options.camera_compensation else 0):
            camera_shift, rematch = self._estimate_camera_shift(
                motion_predicted, motion_boxes, motion_areas, detections, recent, num_recent, matched)
            self._camera_offset = self._camera_offset + camera_shift
            if not rematch:
                break
            motion_predicted = motion_predicted.shifted(camera_shift)
            motion_boxes = motion_boxes + _box_shift(camera_shift)
            motion_areas = box_areas(motion_boxes)
            predicted, predicted_boxes = self._with_flow(motion_predicted, motion_boxes, flow_rows, flow_poses)
            predicted_areas = motion_areas if predicted_boxes is motion_boxes else box_areas(predicted_boxes)
            matched = _Pairs(*self._associate(predicted, predicted_boxes, predicted_areas, detections, recent,
                                              num_recent), last, detections)

        track_rows, detection_columns = matched.rows, matched.columns
        all_recent = num_recent == len(table)
        # Frames since each track's last observation (all 1 when every track was seen last frame).
        gap = table.missed + 1 if options.smoothing == "one_euro" or not all_recent else None
        self._apply_matches(matched, last, detections, gap)
        # The common frame matches every track and every detection: skip the bookkeeping of the rest.
        starts = np.zeros(len(detections), bool)
        if len(detection_columns) < len(detections):
            starts = detections.can_start()
            starts[detection_columns] = False
        recovered_rows = _NO_ROWS
        removed_rows = _NO_ROWS
        if len(track_rows) < len(table):
            track_free = np.ones(len(table), bool)
            track_free[track_rows] = False
            if len(flow_rows):
                shown = starts.copy()
                shown[detection_columns] = True
                recovered_rows = self._recover_with_flow(flow_rows, flow_poses, track_free, detections, shown)
                track_free[recovered_rows] = False
            removed_rows = self._mark_missed(track_free, len(track_rows) + len(recovered_rows))
        table.age += 1
        born_rows, born_columns = self._start_tracks(starts.nonzero()[0], detections)
        if options.smoothing == "one_euro":
            updated_rows = np.concatenate([track_rows, recovered_rows, born_rows]).astype(np.int64)
            self._smooth(updated_rows, np.concatenate([gap[track_rows], gap[recovered_rows],
                                                       np.ones(len(born_rows), np.int32)]))

        if full:
            result = self._result(track_rows, detection_columns, born_rows, born_columns, recovered_rows, detections)
        else:
            result = self._ids(track_rows, detection_columns, born_rows, born_columns, len(detections))
        if len(removed_rows):
            keep = np.ones(len(table), bool)
            keep[removed_rows] = False
            table.keep(keep)
        self._previous_gray = gray
        return result

    # ----------------------------------------------------------------- steps

    def _validate(self, keypoints, boxes, scores, frame):
        k = self._num_keypoints
        keypoints = np.asarray(keypoints, dtype=np.float32)
        if keypoints.size == 0 and keypoints.ndim < 3:
            keypoints = np.zeros((0, k, 3), np.float32)
        if keypoints.ndim != 3 or keypoints.shape[1:] != (k, 3):
            raise ValueError(
                f"PoseTracker.update: keypoints must have shape (N, {k}, 3) [x, y, confidence], "
                f"got {keypoints.shape}")
        if not np.isfinite(keypoints).all():
            raise ValueError("PoseTracker.update: keypoints contain NaN or infinite values")
        n = len(keypoints)
        if boxes is None:
            boxes = boxes_from_keypoints(keypoints, self.options.keypoint_threshold)
        else:
            boxes = np.asarray(boxes, dtype=np.float32)
            if boxes.size == 0 and n == 0:
                boxes = np.zeros((0, 4), np.float32)
            if boxes.shape != (n, 4):
                raise ValueError(f"PoseTracker.update: boxes must have shape ({n}, 4) xyxy, got {boxes.shape}")
            if not np.isfinite(boxes).all():
                raise ValueError("PoseTracker.update: boxes contain NaN or infinite values")
            if (boxes[:, 2:] < boxes[:, :2]).any():
                raise ValueError("PoseTracker.update: boxes must be xyxy with x2 >= x1 and y2 >= y1")
        if scores is None:
            scores = keypoints[..., 2].mean(axis=1) if n else np.zeros((0,), np.float32)
        else:
            scores = np.asarray(scores, dtype=np.float32).reshape(-1) if np.ndim(scores) else None
            if scores is None or scores.shape != (n,):
                raise ValueError(f"PoseTracker.update: scores must have shape ({n},)")
            if not np.isfinite(scores).all():
                raise ValueError("PoseTracker.update: scores contain NaN or infinite values")
        gray = None
        if frame is not None:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
                raise ValueError(
                    f"PoseTracker.update: frame must be an (H, W, 3) BGR or (H, W) uint8 image, "
                    f"got shape {frame.shape} dtype {frame.dtype}")
            if self.options.flow:
                from tracker.flow import to_gray  # noqa: PLC0415

                gray = to_gray(frame)
        elif self.options.flow and self._frame_count == 0:
            logger.warning("PoseTracker: flow is on but update() got no frame; flow is skipped")
        return keypoints, boxes, scores.astype(np.float32, copy=False), gray

    def _predict_motion(self, last: PoseSet) -> tuple[PoseSet, np.ndarray]:
        """Predicted poses and (T, 4) boxes: each track's last observation moved by
        its velocity and by the camera shift accumulated since then."""
        options = self.options
        table = self._table
        if options.motion == "none" and not options.camera_compensation:
            return last, table.boxes  # nothing moves them (both are read-only from here on)
        shift = self._camera_offset - table.camera_at_update  # (T, 2) px
        if options.motion == "constant_velocity":  # one frame of travel is exactly the velocity
            shift = shift + table.velocity * self._coast_steps[table.missed][:, None]
        return last.shifted(shift), _shift_boxes(table.boxes, shift)

    def _estimate_camera_shift(self, predicted: PoseSet, predicted_boxes, predicted_areas, detections: _Detections,
                               recent, num_recent, matched: _Pairs) -> tuple[np.ndarray, bool]:
        """(2,) float32 px image shift of the scene this frame, and whether to match again.

        The shift is the median offset between the motion-predicted poses of
        the tracks seen in the previous frame and their detections. Usually the
        first matching paired most of them, and those pairs are used at no
        extra cost. When it paired fewer than `_CAMERA_MATCHED_FRACTION` of
        them (a jolt of the camera), people are paired again by greedy OKS with
        a scale `camera_search_scale` times larger. The caller matches again
        with the shift applied when the shift exceeds `_CAMERA_REMATCH_SCALE`
        of a person's size (pairs made under a shake may be wrong). The median shrugs
        off a wrong pair. Needs at least `_MIN_CAMERA_PAIRS` pairs: with fewer
        people a person's own change of speed cannot be told from camera motion.
        """
        options = self.options
        no_shift = np.zeros(2, np.float32)
        if num_recent < _MIN_CAMERA_PAIRS:
            return no_shift, False
        pairs = matched
        if num_recent < len(recent) or detections.low_columns is not None:  # else every pair is recent x high
            keep = recent[matched.rows] & detections.high[matched.columns]
            pairs = _Pairs(matched.rows[keep], matched.columns[keep], predicted, detections)
        poses = detections.poses
        if len(pairs.rows) < max(_CAMERA_MATCHED_FRACTION * num_recent, _MIN_CAMERA_PAIRS):
            recent_rows = recent.nonzero()[0]
            confident = detections.high_columns
            widen = np.float32(options.camera_search_scale ** 2)
            recent_predicted, confident_poses = predicted.take(recent_rows), poses.take(confident)
            similarity = oks_between(recent_predicted, confident_poses, predicted_areas[recent_rows] * widen,
                                     detections.areas[confident] * widen, self._exponent_factors,
                                     shared_counts(recent_predicted, confident_poses), options.similarity_threshold)
            pair_rows, pair_columns = match_pairs(similarity, options.similarity_threshold, "greedy")
            pairs = _Pairs(recent_rows[pair_rows], confident[pair_columns], predicted, detections)
        num_pairs = len(pairs.rows)
        if num_pairs < _MIN_CAMERA_PAIRS:
            return no_shift, False
        residual = pairs.translation_from(predicted, predicted_boxes)
        ordered = np.sort(residual, axis=0)  # np.median's Python wrapper costs more than the work
        shift = 0.5 * (ordered[(num_pairs - 1) // 2] + ordered[num_pairs // 2])
        # np.mean's arithmetic (float32 sum, float64 division, float32 result) without its Python wrapper.
        person_scale = float(np.float32(float(np.sqrt(predicted_areas.take(pairs.rows)).sum()) / num_pairs))
        shift_x, shift_y = shift.tolist()
        rematch = max(abs(shift_x), abs(shift_y)) > _CAMERA_REMATCH_SCALE * person_scale
        return shift, rematch

    def _propagate_with_flow(self, gray) -> tuple[np.ndarray, np.ndarray]:
        """Flow-propagated poses of the tracks seen in the previous frame: those
        rows and (R, K, 3) poses, confidence 0 where Lucas-Kanade lost the point
        (there the motion prediction stands in)."""
        table = self._table
        flow_rows = np.zeros((0,), np.int64)
        flow_poses = np.zeros((0, self._num_keypoints, 3), np.float32)
        previous = self._previous_gray
        if gray is None or previous is None or previous.shape != gray.shape:
            return flow_rows, flow_poses
        flow_rows = np.nonzero(table.missed == 0)[0]
        if len(flow_rows) == 0:
            return flow_rows, flow_poses
        from tracker.flow import propagate_keypoints  # noqa: PLC0415

        last = table.keypoints[flow_rows]
        moved, tracked = propagate_keypoints(previous, gray, last, self._flow_parameters)
        moved[..., 2] = np.where(tracked, last[..., 2], 0.0)
        return flow_rows, moved

    def _with_flow(self, predicted: PoseSet, predicted_boxes, flow_rows, flow_poses) -> tuple[PoseSet, np.ndarray]:
        """Predictions with the flow-propagated keypoints in place of the motion
        model's where flow tracked them (new arrays; the inputs are kept)."""
        if len(flow_rows) == 0:
            return predicted, predicted_boxes
        table = self._table
        tracked = flow_poses[..., 2] > 0
        flow = PoseSet.from_keypoints(flow_poses, 0.0)
        signed = predicted.signed.copy()  # (K, 4, T) keypoint-major
        signed[:, :, flow_rows] = np.where(tracked.T[:, None, :], flow.signed, signed[:, :, flow_rows])
        shift = measure_translation(table.keypoints[flow_rows], flow_poses, table.boxes[flow_rows],
                                    table.boxes[flow_rows], self.options.keypoint_threshold)
        predicted_boxes = predicted_boxes.copy()
        predicted_boxes[flow_rows] = table.boxes[flow_rows] + _box_shift(shift)
        return PoseSet(signed, predicted.confident), predicted_boxes

    def _associate(self, predicted: PoseSet, predicted_boxes, predicted_areas, detections: _Detections, recent,
                   num_recent) -> tuple[np.ndarray, np.ndarray]:
        """Similarity and the three matching stages; returns matched (M,) track rows and (M,) detection columns."""
        options = self.options
        table = self._table
        num_tracks, num_detections = len(table), len(detections)
        if num_tracks == 0 or num_detections == 0:
            return _NO_ROWS, _NO_ROWS
        areas = predicted_areas
        if num_recent < num_tracks:  # growth is exactly 1 for tracks seen last frame
            growth = 1.0 + options.lost_scale_growth * table.missed.astype(np.float32)
            areas = areas * growth * growth
        similarity = similarity_between(
            predicted, predicted_boxes, areas, detections.poses, detections.boxes, detections.areas,
            kind=options.similarity, oks_weight=options.oks_weight, exponent_factors=self._exponent_factors,
            min_shared_keypoints=options.min_keypoints, min_similarity=options.similarity_threshold)
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
            return _NO_ROWS, _NO_ROWS
        return np.concatenate(matched_rows), np.concatenate(matched_columns)

    def _apply_matches(self, matched: _Pairs, last: PoseSet, detections: _Detections, gap) -> None:
        """Update the matched tracks with their detections (velocity first, from the old pose).

        gap: (T,) frames since each track's last observation, None when all are 1.
        """
        rows, columns = matched.rows, matched.columns
        if len(rows) == 0:
            return
        options = self.options
        table = self._table
        # Constant writes to every row when every track matched (the usual frame):
        # a slice assignment is one cheap call, a scatter to `rows` several.
        each = slice(None) if len(rows) == len(table) else rows
        if options.motion == "constant_velocity":
            measured = matched.translation_from(last, table.boxes)
            if options.camera_compensation:  # else both offsets stay exactly 0
                measured -= self._camera_offset - table.camera_at_update.take(rows, axis=0)
            if gap is not None:
                measured /= gap[rows, None].astype(np.float32)
            table.velocity[rows] = smooth_velocity(table.velocity.take(rows, axis=0), measured,
                                                   ~table.velocity_known.take(rows), options.velocity_gain)
            table.velocity_known[each] = True
        table.keypoints[rows] = detections.keypoints.take(columns, axis=0)
        table.boxes[rows] = detections.boxes.take(columns, axis=0)
        table.scores[rows] = detections.scores.take(columns)
        if options.camera_compensation:  # else the offset stays 0
            table.camera_at_update[each] = self._camera_offset
        table.hits[each] += 1
        table.missed[each] = 0
        if options.flow:  # only flow recovery counts propagated frames
            table.propagated[each] = 0
        if options.min_hits <= 1:  # tracks are born confirmed: a matched one is (again) confirmed
            table.state[each] = _CONFIRMED
            return
        state = table.state[rows]
        promote = (state == _TENTATIVE) & (table.hits[rows] >= options.min_hits)
        self._assign_ids(rows[promote])
        state = np.where(state == _LOST, _CONFIRMED, state)
        state[promote] = _CONFIRMED
        table.state[rows] = state

    def _recover_with_flow(self, flow_rows, flow_poses, track_free, detections: _Detections,
                           shown: np.ndarray) -> np.ndarray:
        """Give missed confirmed tracks their flow-propagated pose unless a detection covers it.

        shown: (N,) bool, the detections that will be output this frame (matched
        or starting a track); an ignored low-score detection does not suppress.
        """
        options = self.options
        table = self._table
        if len(flow_rows) == 0:
            return _NO_ROWS
        keypoints, boxes = detections.keypoints[shown], detections.boxes[shown]
        # A person who walked behind something loses most of its flow points
        # (the texture under them changed): recover only poses that kept at
        # least half of their confident keypoints, and enough of them. A track
        # detected only once may be a false positive: it is not kept alive.
        was_confident = (table.keypoints[flow_rows, :, 2] >= options.keypoint_threshold).sum(axis=1)
        still_confident = (flow_poses[..., 2] >= options.keypoint_threshold).sum(axis=1)
        candidate = (track_free[flow_rows] & (table.state[flow_rows] == _CONFIRMED)
                     & (table.propagated[flow_rows] < options.flow_max_frames) & (table.hits[flow_rows] >= 2)
                     & (still_confident >= max(options.min_keypoints, 1)) & (2 * still_confident >= was_confident))
        rows = flow_rows[candidate]
        poses = flow_poses[candidate]
        if len(rows) == 0:
            return np.zeros((0,), np.int64)
        shift = measure_translation(table.keypoints[rows], poses, table.boxes[rows], table.boxes[rows],
                                    options.keypoint_threshold)
        candidate_boxes = table.boxes[rows] + _box_shift(shift)
        candidate_areas = box_areas(candidate_boxes)
        similarity_kwargs = dict(kind="oks", sigmas=self._sigmas, keypoint_threshold=options.keypoint_threshold,
                                 min_shared_keypoints=options.min_keypoints)
        # OKS-NMS with the detections ranked first: a detection covering the
        # propagated pose means the person was found (by someone else's track).
        keep = np.ones(len(rows), bool)
        if len(keypoints):
            overlap = pose_similarity(poses, candidate_boxes, candidate_areas, keypoints, boxes, box_areas(boxes),
                                      **similarity_kwargs)
            keep &= overlap.max(axis=1) < options.flow_nms_threshold
        order = np.argsort(-table.scores[rows], kind="stable")
        mutual = pose_similarity(poses, candidate_boxes, candidate_areas, poses, candidate_boxes, candidate_areas,
                                 **similarity_kwargs)
        kept_so_far: list[int] = []
        for index in order.tolist():
            if not keep[index]:
                continue
            if kept_so_far and mutual[index, kept_so_far].max() >= options.flow_nms_threshold:
                keep[index] = False
                continue
            kept_so_far.append(index)
        rows, poses, candidate_boxes, shift = rows[keep], poses[keep], candidate_boxes[keep], shift[keep]
        if len(rows) == 0:
            return np.zeros((0,), np.int64)
        # The velocity is not updated from flow: an occluded person's flow
        # points follow whoever is in front of them, which would drag the
        # track away; the motion model keeps the person's own walk.
        table.camera_at_update[rows] = self._camera_offset
        table.keypoints[rows] = poses
        table.boxes[rows] = candidate_boxes
        table.missed[rows] = 0
        table.propagated[rows] += 1
        return rows.astype(np.int64)

    def _mark_missed(self, track_free: np.ndarray, num_updated: int) -> np.ndarray:
        """Mark the unmatched tracks lost; returns the rows to remove.

        num_updated: tracks matched or recovered this frame (the others are free).
        """
        table = self._table
        if num_updated == len(table):
            return _NO_ROWS
        free_rows = track_free.nonzero()[0]
        missed = table.missed[free_rows] + 1
        table.missed[free_rows] = missed
        gone = (table.state[free_rows] == _TENTATIVE) | (missed > self.options.max_age)
        table.state[free_rows] = np.where(gone, _REMOVED, _LOST)
        return free_rows[gone]

    def _start_tracks(self, columns, detections: _Detections) -> tuple[np.ndarray, np.ndarray]:
        if len(columns) == 0:
            return _NO_ROWS, _NO_ROWS
        options = self.options
        table = self._table
        first_row = len(table)
        born = _TrackTable.new(detections.keypoints[columns], detections.boxes[columns], detections.scores[columns])
        born.age[:] = 1
        born.camera_at_update[:] = self._camera_offset
        table.extend(born)
        rows = np.arange(first_row, len(table), dtype=np.int64)
        if options.min_hits <= 1:
            self._assign_ids(rows)
            table.state[rows] = _CONFIRMED
        return rows, columns.astype(np.int64)

    def _assign_ids(self, rows: np.ndarray) -> None:
        count = len(rows)
        if count:
            self._table.ids[rows] = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
            self._next_id += count

    def _smooth(self, rows: np.ndarray, gap: np.ndarray) -> None:
        """Advance the One-Euro filters of the updated tracks.

        The filter runs on camera-compensated coordinates: it removes the
        detector's jitter but follows camera shake and pans without lag.
        """
        table = self._table
        compensated = table.keypoints[rows, :, :2] - self._camera_offset
        if self.options.smoothing != "one_euro" or len(rows) == 0:
            table.smooth_value[rows] = compensated
            return
        fresh = (table.hits[rows] <= 1) & (table.propagated[rows] == 0)
        value, derivative = one_euro_step(
            compensated, table.smooth_value[rows], table.smooth_derivative[rows],
            gap.astype(np.float32) / np.float32(self.options.fps), self._one_euro)
        value[fresh] = compensated[fresh]
        derivative[fresh] = 0.0
        table.smooth_value[rows] = value
        table.smooth_derivative[rows] = derivative

    def _ids(self, track_rows, detection_columns, born_rows, born_columns, num_detections: int) -> np.ndarray:
        """(N,) int64 track ID of each input pose, -1 where none."""
        table = self._table
        ids = np.full(num_detections, -1, np.int64)
        ids[detection_columns] = table.ids.take(track_rows)
        if len(born_rows):
            ids[born_columns] = table.ids.take(born_rows)
        return ids

    def _result(self, track_rows, detection_columns, born_rows, born_columns, recovered_rows,
                detections: _Detections) -> TrackingResult:
        table = self._table
        ids = self._ids(track_rows, detection_columns, born_rows, born_columns, len(detections))
        tracked = (ids >= 0).nonzero()[0]
        keypoints = detections.keypoints.take(tracked, axis=0)
        boxes, scores = detections.boxes.take(tracked, axis=0), detections.scores.take(tracked)
        track_ids, detection_index = ids.take(tracked), tracked
        if len(recovered_rows):
            recovered_rows = recovered_rows[table.ids[recovered_rows] >= 0]
            keypoints = np.concatenate([keypoints, table.keypoints[recovered_rows]])
            boxes = np.concatenate([boxes, table.boxes[recovered_rows]])
            scores = np.concatenate([scores, table.scores[recovered_rows]])
            track_ids = np.concatenate([track_ids, table.ids[recovered_rows]])
            detection_index = np.concatenate([tracked, np.full(len(recovered_rows), -1, np.int64)])
        if self.options.smoothing == "one_euro":
            row_of_detection = np.full(len(detections), -1, np.int64)
            row_of_detection[detection_columns] = track_rows
            row_of_detection[born_columns] = born_rows
            output_rows = np.concatenate([row_of_detection[tracked], recovered_rows])
            keypoints[..., :2] = table.smooth_value[output_rows] + self._camera_offset
        elif self.options.camera_compensation:
            # Same arithmetic as the One-Euro path without its filter: poses are
            # kept camera-compensated and the offset is added back on output
            # (the round trip can change the last bit; both paths agree on it).
            # On whole [x, y, confidence] rows (confidence +- 0 is exact): a
            # contiguous array is several times faster than the strided x, y view.
            offset = np.concatenate([self._camera_offset, _ZERO_CONFIDENCE])
            keypoints -= offset
            keypoints += offset
        return TrackingResult(ids=ids, track_ids=track_ids, keypoints=keypoints, boxes=boxes, scores=scores,
                              detection_index=detection_index)
