"""Small typed objects that travel between the pipeline stages.

No torch, no Qt: every stage (detector, pose, tracker, sinks, GUI) can import
this module cheaply. Arrays are validated on construction; all coordinates are
in the pixels of the original frame, x to the right, y down, origin at the
top-left corner of the top-left pixel (the convention of OpenCV and the
official HRNet code).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np


def _as_array(name: str, value, dtype, shape_tail: tuple[int | None, ...]) -> np.ndarray:
    """Return `value` as a C-contiguous array of `dtype`, checking its trailing shape."""
    array = np.ascontiguousarray(value, dtype=dtype)
    if array.ndim != 1 + len(shape_tail):
        raise ValueError(f"{name} must have {1 + len(shape_tail)} dimensions, got shape {array.shape}")
    for axis, expected in enumerate(shape_tail, start=1):
        if expected is not None and array.shape[axis] != expected:
            raise ValueError(f"{name} must have size {expected} on axis {axis}, got shape {array.shape}")
    return array


def _person_index(index, count: int, owner: str):
    """`index` as a slice or a 1-D integer array that keeps the person axis.

    Accepts what numpy accepts along one axis: an int (kept as a length-1
    selection, like supervision's `Detections[i]`), a slice, a boolean mask of
    length `count`, or a sequence/array of integer positions (negative ones
    count from the end). Anything else (a tuple, floats) is a clear error.
    """
    if isinstance(index, slice):
        return index
    if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
        position = int(index)
        if not -count <= position < count:
            raise IndexError(f"{owner} index {position} out of range for {count} people")
        return np.array([position % count], np.int64)
    if isinstance(index, tuple):
        raise TypeError(f"{owner} takes one index along the person axis, got a tuple {index!r}")
    array = np.asarray(index)
    if array.ndim != 1:
        raise IndexError(f"{owner} index must be 1-D, got shape {array.shape}")
    if array.dtype == np.bool_:
        if len(array) != count:
            raise IndexError(f"{owner} boolean mask has {len(array)} entries for {count} people")
        return np.flatnonzero(array)
    if array.size == 0:
        return np.zeros((0,), np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise IndexError(f"{owner} index must be integers, a boolean mask or a slice, got dtype {array.dtype}")
    if ((array < -count) | (array >= count)).any():
        raise IndexError(f"{owner} index {array.tolist()} out of range for {count} people")
    return array.astype(np.int64)


class _PerPersonIndexing:
    """`obj[mask]`, `obj[1:3]`, `obj[[0, 2]]`, `obj[i]` for the typed results.

    Returns the same type with every per-person field (the dataclass fields in
    `_PER_PERSON`, whose first axis is the person) selected; any other field is
    passed on unchanged. An int keeps the person axis (length-1 result) so the
    result is always a valid object of the same type.
    """

    _PER_PERSON: tuple[str, ...] = ()

    def __getitem__(self, index):
        selection = _person_index(index, len(self), type(self).__name__)
        changes = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in self._PER_PERSON and value is not None:
                changes[item.name] = value[selection]
        return replace(self, **changes)


@dataclass(frozen=True)
class Frame:
    """One image from a source.

    Attributes:
        index: 0-based position of the frame in its source (frames a live source
            dropped still count, so indices can jump).
        timestamp_s: capture time in seconds (video position for files,
            `time.monotonic()` for live sources).
        image: (H, W, 3) uint8 BGR. Nobody draws on it in place: annotators copy.
        source: the source string it came from (file path, folder, camera index, URL).
        path: the image file the frame was read from when the source is a folder
            of frames, else None (file-based detectors look boxes up by it).
    """

    index: int
    timestamp_s: float
    image: np.ndarray
    source: str = ""
    path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.image, np.ndarray) or self.image.ndim != 3 or self.image.shape[2] != 3:
            shape = getattr(self.image, "shape", None)
            raise ValueError(f"Frame.image must be an (H, W, 3) array, got shape {shape}")
        if self.image.dtype != np.uint8:
            raise ValueError(f"Frame.image must be uint8, got {self.image.dtype}")

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class Detections(_PerPersonIndexing):
    """Person boxes found in one frame.

    Attributes:
        boxes: (N, 4) float32 [x1, y1, x2, y2] in frame pixels.
        scores: (N,) float32 detector confidence in [0, 1].
        boxes_xywh: (N, 4) float64 [x, y, w, h] pixels exactly as a box file
            gave them (detection files, ground truth), or None (a network).
            The pose stage crops from these when present, so evaluation runs
            match the official code to the last bit (float32 xyxy would move
            crop centres by ~1e-5 px).
    """

    boxes: np.ndarray
    scores: np.ndarray
    boxes_xywh: np.ndarray | None = None

    _PER_PERSON = ("boxes", "scores", "boxes_xywh")

    def __post_init__(self) -> None:
        boxes = _as_array("Detections.boxes", self.boxes, np.float32, (4,))
        scores = _as_array("Detections.scores", self.scores, np.float32, ())
        if len(scores) != len(boxes):
            raise ValueError(f"Detections: {len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        if self.boxes_xywh is not None:
            exact = _as_array("Detections.boxes_xywh", self.boxes_xywh, np.float64, (4,))
            if len(exact) != len(boxes):
                raise ValueError(f"Detections: {len(boxes)} boxes but {len(exact)} boxes_xywh")
            object.__setattr__(self, "boxes_xywh", exact)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class Poses(_PerPersonIndexing):
    """Keypoints of the people in one frame (untracked).

    Attributes:
        keypoints: (N, K, 2) float32 (x, y) in frame pixels; K = 17 for COCO.
        scores: (N, K) float32 per-keypoint confidence (the heatmap maximum; may
            be negative for an empty heatmap).
        boxes: (N, 4) float32 [x1, y1, x2, y2] in frame pixels, the box each
            pose was estimated in.
        box_scores: (N,) float32 score of that box (detector score, 1 for given boxes).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray

    _PER_PERSON = ("keypoints", "scores", "boxes", "box_scores")

    def __post_init__(self) -> None:
        keypoints = _as_array("Poses.keypoints", self.keypoints, np.float32, (None, 2))
        n, k = keypoints.shape[:2]
        scores = _as_array("Poses.scores", self.scores, np.float32, (k,))
        boxes = _as_array("Poses.boxes", self.boxes, np.float32, (4,))
        box_scores = _as_array("Poses.box_scores", self.box_scores, np.float32, ())
        if not (len(scores) == len(boxes) == len(box_scores) == n):
            raise ValueError(
                f"Poses: {n} keypoint sets, {len(scores)} score rows, {len(boxes)} boxes, {len(box_scores)} box scores"
            )
        object.__setattr__(self, "keypoints", keypoints)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "box_scores", box_scores)

    @classmethod
    def empty(cls, num_keypoints: int = 17) -> "Poses":
        return cls(
            np.zeros((0, num_keypoints, 2), np.float32),
            np.zeros((0, num_keypoints), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
        )

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    def keypoints_with_scores(self) -> np.ndarray:
        """(N, K, 3) float32 [x, y, score], the layout the tracker takes."""
        return np.concatenate([self.keypoints, self.scores[..., None]], axis=-1)


@dataclass(frozen=True)
class TrackedPoses(Poses):
    """Poses with identities.

    Attributes (in addition to `Poses`):
        track_ids: (N,) int64 track ID of each pose; IDs are never reused within a video.
        detection_index: (N,) int64 index of the input pose each output came
            from, or -1 for a pose the tracker made itself (flow propagation).
    """

    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    detection_index: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    _PER_PERSON = Poses._PER_PERSON + ("track_ids", "detection_index")

    def __post_init__(self) -> None:
        super().__post_init__()
        track_ids = _as_array("TrackedPoses.track_ids", self.track_ids, np.int64, ())
        detection_index = _as_array("TrackedPoses.detection_index", self.detection_index, np.int64, ())
        if not (len(track_ids) == len(detection_index) == len(self.keypoints)):
            raise ValueError(
                f"TrackedPoses: {len(self.keypoints)} poses, {len(track_ids)} track ids, "
                f"{len(detection_index)} detection indices"
            )
        object.__setattr__(self, "track_ids", track_ids)
        object.__setattr__(self, "detection_index", detection_index)

    @classmethod
    def empty(cls, num_keypoints: int = 17) -> "TrackedPoses":
        base = Poses.empty(num_keypoints)
        return cls(base.keypoints, base.scores, base.boxes, base.box_scores,
                   np.zeros((0,), np.int64), np.zeros((0,), np.int64))


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline knows about one frame, as the sinks receive it.

    Attributes:
        frame: the input frame.
        detections: the person boxes the pose stage used.
        poses: tracked poses.
        timings_s: seconds spent per stage for this frame, keyed by stage name
            ("capture", "detection", "pose", "tracking", ...).
        dropped_frames: frames a live source dropped before this one (total so far).
    """

    frame: Frame
    detections: Detections
    poses: TrackedPoses
    timings_s: dict[str, float] = field(default_factory=dict)
    dropped_frames: int = 0
