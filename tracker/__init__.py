"""PoseTrack-style multi-person pose tracking (numpy and lap; cv2 only for flow and a ReID network; never torch).

    trk = tracker.PoseTracker(max_age=30, motion="constant_velocity")
    result = trk.update(keypoints_n17x3, boxes=None, scores=None, frame=None)
    result.ids          # (N,) track ID of each input pose, -1: untracked
    result.keypoints    # the output poses (smoothed, plus flow-recovered ones), with
    result.track_ids    # their IDs and result.detection_index (-1: flow-recovered)

See `tracker.tracker` for the algorithm, `tracker.reid` for re-identification by
appearance (`reid="appearance"`, docs/REID.md), and `tracker.options` for every
option (`OPTION_INFO` describes each one for user interfaces).
"""

from tracker.similarity import COCO_SIGMAS, iou_matrix, oks_matrix, pose_similarity
from tracker.options import OPTION_INFO, OptionInfo, TrackerOptions
from tracker.result import TrackingResult
from tracker.tracker import PoseTracker
from tracker.tracks import Track, TrackState

__all__ = [
    "COCO_SIGMAS",
    "OPTION_INFO",
    "OptionInfo",
    "PoseTracker",
    "Track",
    "TrackState",
    "TrackerOptions",
    "TrackingResult",
    "iou_matrix",
    "oks_matrix",
    "pose_similarity",
]
