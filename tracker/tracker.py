"""`PoseTracker`: gives every pose a track ID that stays with the same person.

Per frame (all steps vectorised over tracks and detections), each step in its module:

1. Predict (`motion`): every live track's last pose moved by its
   constant-velocity estimate (decaying while it coasts) and by the camera
   motion estimated since; with flow on (`flow_recovery`), Lucas-Kanade optical
   flow from the previous frame replaces that for the tracks seen in it.
2. Associate (`association`): similarity of predictions and detections, then
   three matching stages (recent tracks x confident detections, all tracks x
   the rest, recent tracks x low-score detections).
3. Camera compensation (`camera`): the median offset between predictions and
   their matched detections is the camera's shift; a large one (a shaken
   camera) means the matching is redone with it applied.
4. Update the matched tracks: velocity (net of camera motion, bounded by what
   the track was seen to move), pose, box, score; confirm them (`tracks`).
5. With flow on, a confirmed track the detector missed may live on its
   flow-propagated pose (`flow_recovery`), returned with detection_index -1.
6. Lifecycle (`tracks`): unmatched tracks coast (LOST) for up to `max_age`
   frames, then are removed; unmatched confident detections with enough
   confident keypoints start tracks.
7. Smooth the output keypoints (`smoothing`, One-Euro) when on.

With `reid` on and a frame given (`tracker.reid`), each detection also gets an
appearance descriptor: it joins the similarity in step 2, detections about to
start tracks (and young tracks) may get the ID of a lost track back before
step 6, and tracks removed in step 6 leave their appearance gallery in a
memory for `reid_memory_s`. Without a frame, tracking is keypoint-only.

IDs come from a counter owned by each tracker's table, start at 1, and are
never reused within a video. `reset()` starts a new video: the tracks are
dropped and numbering restarts at 1, so a video's IDs do not depend on what
ran before. An input pose that is not part of a confirmed track (low score,
too few confident keypoints, or a track still TENTATIVE under `min_hits`)
gets ID -1.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping

import numpy as np

from tracker.association import DetectionSet, MatchedPairs, associate
from tracker.appearance import Appearance, make_encoder
from tracker.camera import CAMERA_ROUNDS, estimate_camera_shift
from tracker.flow_recovery import propagate_tracks, recover_with_flow, with_flow
from tracker.motion import box_shift, bounded_velocity, coast_steps, predict_poses, smooth_velocity
from tracker.options import TrackerOptions
from tracker.reid import Reidentifier
from tracker.result import TrackingResult
from tracker.similarity import COCO_SIGMAS, PoseSet, box_areas, boxes_from_keypoints, oks_exponent_factors
from tracker.smoothing import OneEuroParameters, smooth_tracks
from tracker.tracks import NO_ROWS, Track, TrackTable

logger = logging.getLogger(__name__)

_ZERO_CONFIDENCE = np.zeros((1,), np.float32)


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
        self._reid = None if options.reid == "off" else Reidentifier(make_encoder(options.reid, self._num_keypoints),
                                                                    options)
        self.reset()

    @classmethod
    def simple_baseline(cls, **overrides) -> "PoseTracker":
        """The simple greedy OKS baseline (see `TrackerOptions.simple_baseline`)."""
        return cls(TrackerOptions.simple_baseline(**overrides))

    def reset(self) -> None:
        """Start a new video: drop all tracks; IDs restart at 1."""
        self._table = TrackTable.empty(self._num_keypoints, (0, 0, 0) if self._reid is None else
                                       self._reid.gallery_shape)
        if self._reid is not None:
            self._reid.reset()
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
        return self._table.snapshots()

    def update(self, keypoints, boxes=None, scores=None, frame=None) -> TrackingResult:
        """Track one frame.

        Args:
            keypoints: (N, K, 3) [x, y, confidence] in frame pixels (K = 17 for COCO).
            boxes: (N, 4) xyxy px, or None to use the extent of the confident keypoints.
            scores: (N,) detection scores in [0, 1], or None for the mean keypoint confidence.
            frame: (H, W, 3) uint8 BGR image (or (H, W) gray); used when flow or reid is on.

        Returns:
            the `TrackingResult`: `ids`, the (N,) track ID of each input pose
            (-1: untracked), and the output poses (tracked inputs, then
            flow-recovered poses with detection_index -1).
        """
        keypoints, boxes, scores, frame, gray = self._validate(keypoints, boxes, scores, frame)
        options = self.options
        table = self._table
        self._frame_count += 1
        detections = DetectionSet(keypoints, boxes, scores, options)
        appearance, appearance_similarity = None, None
        if self._reid is not None and frame is not None:
            appearance = self._reid.encode(frame, keypoints, boxes)
            appearance_similarity = functools.partial(self._reid.association_similarity, table, appearance)
        recent = table.missed == 0  # tracks seen in the previous frame
        num_recent = int(np.count_nonzero(recent))
        last = PoseSet.from_keypoints(table.keypoints, options.keypoint_threshold)

        motion_predicted, motion_boxes = self._predict_motion(last)
        motion_areas = box_areas(motion_boxes)
        flow_rows, flow_poses = propagate_tracks(table, self._previous_gray, gray, self._flow_parameters)
        predicted, predicted_boxes, predicted_areas = self._with_flow(
            motion_predicted, motion_boxes, motion_areas, flow_rows, flow_poses)
        matched = MatchedPairs(*associate(predicted, predicted_boxes, predicted_areas, table.missed, detections,
                                          recent, num_recent, options, self._exponent_factors,
                                          appearance_similarity), last, detections)
        # Camera compensation: a shake makes the first pairing partly wrong, so
        # the shift is refined from the corrected pairing (at most twice).
        for _ in range(CAMERA_ROUNDS if options.camera_compensation else 0):
            camera_shift, rematch = estimate_camera_shift(
                motion_predicted, motion_boxes, motion_areas, detections, recent, num_recent, matched, options,
                self._exponent_factors)
            self._camera_offset = self._camera_offset + camera_shift
            if not rematch:
                break
            motion_predicted = motion_predicted.shifted(camera_shift)
            motion_boxes = motion_boxes + box_shift(camera_shift)
            motion_areas = box_areas(motion_boxes)
            predicted, predicted_boxes, predicted_areas = self._with_flow(
                motion_predicted, motion_boxes, motion_areas, flow_rows, flow_poses)
            matched = MatchedPairs(*associate(predicted, predicted_boxes, predicted_areas, table.missed,
                                              detections, recent, num_recent, options, self._exponent_factors,
                                              appearance_similarity), last, detections)

        track_rows, detection_columns = matched.rows, matched.columns
        all_recent = num_recent == len(table)
        # Frames since each track's last observation (all 1 when every track was seen last frame).
        gap = table.missed + 1 if options.smoothing == "one_euro" or not all_recent else None
        # The common frame matches every track and every detection: skip the bookkeeping of the rest.
        starts = np.zeros(len(detections), bool)
        if len(detection_columns) < len(detections):
            starts = detections.can_start()
            starts[detection_columns] = False
        reidentified = None
        if appearance is not None:
            reidentified = self._reid.reidentify(table, appearance, detections.boxes, detections.scores, track_rows,
                                                 detection_columns, starts, self._frame_count, self._camera_offset)
            if reidentified is not None:
                starts[reidentified.born_columns] = False
        self._apply_matches(matched, last, detections, gap)
        recovered_rows = NO_ROWS
        removed_rows = NO_ROWS
        if len(track_rows) < len(table):
            track_free = np.ones(len(table), bool)
            track_free[track_rows] = False
            if len(flow_rows):
                shown = starts.copy()
                shown[detection_columns] = True
                recovered_rows = recover_with_flow(table, flow_rows, flow_poses, track_free, detections, shown,
                                                   self._camera_offset, options, self._sigmas)
                track_free[recovered_rows] = False
            if len(track_rows) + len(recovered_rows) < len(table):
                removed_rows = table.mark_missed(track_free, options.max_age)
        table.age += 1
        born_columns = starts.nonzero()[0].astype(np.int64)
        born_rows = table.start(detections.keypoints[born_columns], detections.boxes[born_columns],
                                detections.scores[born_columns], self._camera_offset, options.min_hits <= 1)
        if appearance is not None:
            born_rows, born_columns, removed_rows = self._reidentify_rows(
                reidentified, appearance, detections, track_rows, detection_columns, born_rows, born_columns,
                removed_rows)
        if options.smoothing == "one_euro":
            updated_rows = np.concatenate([track_rows, recovered_rows, born_rows]).astype(np.int64)
            smooth_tracks(table, updated_rows, np.concatenate([gap[track_rows], gap[recovered_rows],
                                                               np.ones(len(born_rows), np.int32)]),
                          self._camera_offset, self._one_euro, options.fps)

        result = self._result(track_rows, detection_columns, born_rows, born_columns, recovered_rows, detections)
        if self._reid is not None and len(removed_rows):
            self._reid.remember(table, removed_rows, self._frame_count)
        table.remove(removed_rows)
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
                from tracker.flow import to_gray  # noqa: PLC0415  (cv2 only when flow is on)

                gray = to_gray(frame)
        elif self._frame_count == 0 and (self.options.flow or self._reid is not None):
            name = "flow" if self.options.flow else "reid"
            logger.warning("PoseTracker: %s is on but update() got no frame; %s is skipped", name, name)
        return keypoints, boxes, scores.astype(np.float32, copy=False), frame, gray

    def _reidentify_rows(self, reidentified, appearance: Appearance, detections: DetectionSet, track_rows,
                         detection_columns, born_rows, born_columns, removed_rows):
        """Re-identified detections start tracks with their old IDs (and young
        tracks take theirs); then every matched or born track's gallery learns
        from its view. Returns the born rows and columns (re-identified ones
        appended) and the rows to remove (LOST rows whose ID lives on added)."""
        table = self._table
        if reidentified is not None:
            columns = reidentified.born_columns
            rows = table.start(detections.keypoints[columns], detections.boxes[columns], detections.scores[columns],
                               self._camera_offset, False)
            self._reid.apply(table, reidentified, rows)
            born_rows = np.concatenate([born_rows, rows]).astype(np.int64)
            born_columns = np.concatenate([born_columns, columns]).astype(np.int64)
            retired = reidentified.retired_rows
            if len(retired):
                # Not remembered: removed here, before step 6 would remember them.
                table.ids[retired] = -1
                removed_rows = np.union1d(removed_rows, retired).astype(np.int64)
        self._reid.update_galleries(table, np.concatenate([track_rows, born_rows]).astype(np.int64),
                                    np.concatenate([detection_columns, born_columns]).astype(np.int64), appearance,
                                    detections.keypoints, detections.boxes, detections.scores)
        return born_rows, born_columns, removed_rows

    def _predict_motion(self, last: PoseSet) -> tuple[PoseSet, np.ndarray]:
        """Motion-model predictions of every track in this frame (see `motion.predict_poses`)."""
        options, table = self.options, self._table
        if options.motion == "none" and not options.camera_compensation:
            return predict_poses(last, table.boxes, None, None, None)
        camera_shift = self._camera_offset - table.camera_at_update  # (T, 2) px (0 without compensation)
        if options.motion == "constant_velocity":
            return predict_poses(last, table.boxes, camera_shift, table.velocity, self._coast_steps[table.missed])
        return predict_poses(last, table.boxes, camera_shift, None, None)

    def _with_flow(self, predicted: PoseSet, boxes: np.ndarray, areas: np.ndarray, flow_rows, flow_poses):
        """Predictions, boxes and areas with the flow-propagated poses where flow tracked them."""
        flowed, flowed_boxes = with_flow(self._table, predicted, boxes, flow_rows, flow_poses,
                                         self.options.keypoint_threshold)
        return flowed, flowed_boxes, (areas if flowed_boxes is boxes else box_areas(flowed_boxes))

    def _apply_matches(self, matched: MatchedPairs, last: PoseSet, detections: DetectionSet, gap) -> None:
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
        every_row = len(rows) == len(table)
        each = slice(None) if every_row else rows
        if options.motion == "constant_velocity":
            self._update_velocities(matched, last, gap, each)
        table.keypoints[rows] = detections.keypoints.take(columns, axis=0)
        table.boxes[rows] = detections.boxes.take(columns, axis=0)
        table.scores[rows] = detections.scores.take(columns)
        if options.camera_compensation:  # else the offset stays 0
            table.camera_at_update[each] = self._camera_offset
        table.hits[each] += 1
        table.missed[each] = 0
        if options.flow:  # only flow recovery counts propagated frames
            table.propagated[each] = 0
        table.confirm_matched(rows, options.min_hits, every_row)

    def _update_velocities(self, matched: MatchedPairs, last: PoseSet, gap, each) -> None:
        """New velocities of the matched tracks, from their last pose to their detection."""
        options, table, rows = self.options, self._table, matched.rows
        displacement = matched.translation_from(last, table.boxes)  # (M, 2) px in the image
        measured = displacement  # net of camera motion
        if options.camera_compensation:  # else both offsets stay exactly 0
            measured = displacement - (self._camera_offset - table.camera_at_update.take(rows, axis=0))
        if gap is not None:  # per frame
            frames = gap[rows, None].astype(np.float32)
            measured, displacement = measured / frames, displacement / frames
        first = ~table.velocity_known.take(rows)
        velocity = smooth_velocity(table.velocity.take(rows, axis=0), measured, first, options.velocity_gain)
        if options.velocity_bound_frames > 0:
            image_motion = smooth_velocity(table.image_motion.take(rows, axis=0), displacement, first,
                                           1.0 / options.velocity_bound_frames)
            table.image_motion[rows] = image_motion
            velocity = bounded_velocity(velocity, image_motion, options.velocity_bound_margin_px)
        table.velocity[rows] = velocity
        table.velocity_known[each] = True

    def _result(self, track_rows, detection_columns, born_rows, born_columns, recovered_rows,
                detections: DetectionSet) -> TrackingResult:
        table = self._table
        ids = np.full(len(detections), -1, np.int64)
        ids[detection_columns] = table.ids.take(track_rows)
        if len(born_rows):
            ids[born_columns] = table.ids.take(born_rows)
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
