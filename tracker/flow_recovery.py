"""Optical-flow prediction and recovery of missed people (Simple Baselines' joint propagation).

With flow on, the tracks seen in the previous frame are moved into this frame
by Lucas-Kanade flow (`tracker.flow`, the only cv2 user): those keypoints
replace the motion model's prediction where flow tracked them. A confirmed
track the detector then missed gets its flow-propagated pose, unless a shown
detection already covers it (OKS-NMS, detections first), for up to
`flow_max_frames` frames in a row; such poses are returned with detection_index -1.
"""

from __future__ import annotations

import numpy as np

from tracker.association import DetectionSet
from tracker.motion import box_shift, measure_translation
from tracker.options import TrackerOptions
from tracker.similarity import PoseSet, box_areas, pose_similarity
from tracker.tracks import CONFIRMED, NO_ROWS, TrackTable


def propagate_tracks(table: TrackTable, previous_gray: np.ndarray | None, gray: np.ndarray | None,
                     parameters) -> tuple[np.ndarray, np.ndarray]:
    """Flow-propagated poses of the tracks seen in the previous frame: those (R,)
    rows and (R, K, 3) poses, confidence 0 where Lucas-Kanade lost the point
    (there the motion prediction stands in). parameters: `flow.FlowParameters`."""
    flow_rows = np.zeros((0,), np.int64)
    flow_poses = np.zeros((0, table.keypoints.shape[1], 3), np.float32)
    if gray is None or previous_gray is None or previous_gray.shape != gray.shape:
        return flow_rows, flow_poses
    flow_rows = np.nonzero(table.missed == 0)[0]
    if len(flow_rows) == 0:
        return flow_rows, flow_poses
    from tracker.flow import propagate_keypoints  # noqa: PLC0415  (cv2 only when flow is on)

    last = table.keypoints[flow_rows]
    moved, tracked = propagate_keypoints(previous_gray, gray, last, parameters)
    moved[..., 2] = np.where(tracked, last[..., 2], 0.0)
    return flow_rows, moved


def with_flow(table: TrackTable, predicted: PoseSet, predicted_boxes: np.ndarray, flow_rows: np.ndarray,
              flow_poses: np.ndarray, keypoint_threshold: float) -> tuple[PoseSet, np.ndarray]:
    """Predictions with the flow-propagated keypoints in place of the motion
    model's where flow tracked them (new arrays; the inputs are kept)."""
    if len(flow_rows) == 0:
        return predicted, predicted_boxes
    tracked = flow_poses[..., 2] > 0
    flow = PoseSet.from_keypoints(flow_poses, 0.0)
    signed = predicted.signed.copy()  # (K, 4, T) keypoint-major
    signed[:, :, flow_rows] = np.where(tracked.T[:, None, :], flow.signed, signed[:, :, flow_rows])
    shift = measure_translation(table.keypoints[flow_rows], flow_poses, table.boxes[flow_rows],
                                table.boxes[flow_rows], keypoint_threshold)
    predicted_boxes = predicted_boxes.copy()
    predicted_boxes[flow_rows] = table.boxes[flow_rows] + box_shift(shift)
    return PoseSet(signed, predicted.confident), predicted_boxes


def recover_with_flow(table: TrackTable, flow_rows: np.ndarray, flow_poses: np.ndarray, track_free: np.ndarray,
                      detections: DetectionSet, shown: np.ndarray, camera_offset: np.ndarray,
                      options: TrackerOptions, sigmas: np.ndarray) -> np.ndarray:
    """Give missed confirmed tracks their flow-propagated pose unless a detection covers it.

    track_free: (T,) bool, the tracks no detection matched. shown: (N,) bool,
    the detections that will be output this frame (matched or starting a
    track); an ignored low-score detection does not suppress. Updates the
    recovered tracks' rows and returns them.
    """
    if len(flow_rows) == 0:
        return NO_ROWS
    keypoints, boxes = detections.keypoints[shown], detections.boxes[shown]
    # A person who walked behind something loses most of its flow points
    # (the texture under them changed): recover only poses that kept at
    # least half of their confident keypoints, and enough of them. A track
    # detected only once may be a false positive: it is not kept alive.
    was_confident = (table.keypoints[flow_rows, :, 2] >= options.keypoint_threshold).sum(axis=1)
    still_confident = (flow_poses[..., 2] >= options.keypoint_threshold).sum(axis=1)
    candidate = (track_free[flow_rows] & (table.state[flow_rows] == CONFIRMED)
                 & (table.propagated[flow_rows] < options.flow_max_frames) & (table.hits[flow_rows] >= 2)
                 & (still_confident >= max(options.min_keypoints, 1)) & (2 * still_confident >= was_confident))
    rows = flow_rows[candidate]
    poses = flow_poses[candidate]
    if len(rows) == 0:
        return np.zeros((0,), np.int64)
    shift = measure_translation(table.keypoints[rows], poses, table.boxes[rows], table.boxes[rows],
                                options.keypoint_threshold)
    candidate_boxes = table.boxes[rows] + box_shift(shift)
    candidate_areas = box_areas(candidate_boxes)
    similarity_kwargs = dict(kind="oks", sigmas=sigmas, keypoint_threshold=options.keypoint_threshold,
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
    rows, poses, candidate_boxes = rows[keep], poses[keep], candidate_boxes[keep]
    if len(rows) == 0:
        return np.zeros((0,), np.int64)
    # The velocity is not updated from flow: an occluded person's flow
    # points follow whoever is in front of them, which would drag the
    # track away; the motion model keeps the person's own walk.
    table.camera_at_update[rows] = camera_offset
    table.keypoints[rows] = poses
    table.boxes[rows] = candidate_boxes
    table.missed[rows] = 0
    table.propagated[rows] += 1
    return rows.astype(np.int64)
