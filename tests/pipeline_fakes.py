"""Small stand-ins for the detector, pose estimator, tracker and sources (pipeline tests and benchmarks).

Each fake has a configurable cost (`sleep_s`) so tests can check throughput,
latency and drop policies without models, and can fail on a chosen frame.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from core.types import Detections, Frame
from tracker import TrackingResult

NUM_KEYPOINTS = 17


def make_frame(index: int, width: int = 64, height: int = 48, timestamp_s: float | None = None) -> Frame:
    """A frame whose pixels encode its index (value index % 256), so order can be checked."""
    image = np.full((height, width, 3), index % 256, np.uint8)
    return Frame(index=index, timestamp_s=float(index) if timestamp_s is None else timestamp_s, image=image,
                 source="synthetic")


class ListSource:
    """A file-like source of `count` synthetic frames; `fail_at` raises while reading that frame."""

    live = False

    def __init__(self, count: int, read_s: float = 0.0, fail_at: int | None = None) -> None:
        self.name = "synthetic"
        self.count = count
        self.read_s = read_s
        self.fail_at = fail_at
        self.next_index = 0
        self.closed = False
        self.last_read_s = 0.0

    def read(self, timeout_s: float | None = None) -> Frame | None:
        if self.next_index >= self.count:
            return None
        if self.fail_at is not None and self.next_index == self.fail_at:
            raise OSError(f"{self.name}: read error at frame {self.next_index}")
        if self.read_s:
            time.sleep(self.read_s)
        frame = make_frame(self.next_index)
        self.next_index += 1
        self.last_read_s = self.read_s
        return frame

    def seek(self, index: int) -> bool:
        """Go on from frame `index`, as `VideoFileSource.seek` (False outside the source)."""
        if not 0 <= index < self.count:
            return False
        self.next_index = index
        return True

    def close(self) -> None:
        self.closed = True


class FakeCamera:
    """A `cv2.VideoCapture` stand-in delivering frames at `fps` (for `LiveSource`)."""

    def __init__(self, fps: float = 100.0, fail_after: int | None = None, opened: bool = True) -> None:
        self.period_s = 1.0 / fps
        self.fail_after = fail_after
        self.opened = opened
        self.delivered = 0
        self.released = threading.Event()
        self._next_due = time.monotonic()

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_due = max(self._next_due + self.period_s, time.monotonic())
        if self.fail_after is not None and self.delivered >= self.fail_after:
            return False, None
        image = np.full((48, 64, 3), self.delivered % 256, np.uint8)
        self.delivered += 1
        return True, image

    def release(self) -> None:
        self.released.set()


class FakeDetector:
    """Returns `people` fixed boxes per frame after sleeping `sleep_s` per call."""

    def __init__(self, people: int = 2, sleep_s: float = 0.0, fail_at: int | None = None) -> None:
        self.people = people
        self.sleep_s = sleep_s
        self.fail_at = fail_at
        self.calls: list[list[int]] = []

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        self.calls.append([frame.index for frame in frames])
        if self.sleep_s:
            time.sleep(self.sleep_s)
        results = []
        for frame in frames:
            if self.fail_at is not None and frame.index == self.fail_at:
                raise RuntimeError(f"detector exploded on frame {frame.index}")
            boxes = np.array([[4 + 10 * i, 4, 12 + 10 * i, 40] for i in range(self.people)], np.float32)
            results.append(Detections(boxes.reshape(-1, 4), np.linspace(0.9, 0.6, self.people, dtype=np.float32)))
        return results


class FakeEstimator:
    """Keypoints spread over each box; `sleep_s` per call plus `per_frame_s` per frame in the batch."""

    num_keypoints = NUM_KEYPOINTS
    keypoint_names = tuple(f"keypoint_{index}" for index in range(NUM_KEYPOINTS))
    skeleton = tuple((index, index + 1) for index in range(NUM_KEYPOINTS - 1))

    def __init__(self, sleep_s: float = 0.0, per_frame_s: float = 0.0, fail_at_call: int | None = None) -> None:
        self.sleep_s = sleep_s
        self.per_frame_s = per_frame_s
        self.fail_at_call = fail_at_call
        self.batch_sizes: list[int] = []

    def estimate_many(self, images, boxes_per_image):
        if self.fail_at_call is not None and len(self.batch_sizes) == self.fail_at_call:
            raise ValueError("pose estimator exploded")
        self.batch_sizes.append(len(images))
        time.sleep(self.sleep_s + self.per_frame_s * len(images))
        results = []
        for image, boxes in zip(images, boxes_per_image):
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            t = np.linspace(0.0, 1.0, NUM_KEYPOINTS, dtype=np.float32)
            x = boxes[:, None, 0] + t[None] * (boxes[:, None, 2] - boxes[:, None, 0])
            y = boxes[:, None, 1] + t[None] * (boxes[:, None, 3] - boxes[:, None, 1])
            keypoints = np.stack([x, y], axis=-1).astype(np.float32)
            scores = np.full((len(boxes), NUM_KEYPOINTS), 0.8, np.float32)
            results.append((keypoints, scores))
        return results


class FakeTracker:
    """Gives pose i the ID i + 1 in every frame; `sleep_s` per update."""

    def __init__(self, sleep_s: float = 0.0) -> None:
        self.sleep_s = sleep_s
        self.updates = 0

    def update(self, keypoints, boxes=None, scores=None, frame=None):
        self.updates += 1
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return TrackingResult.of_inputs(keypoints, np.arange(1, len(keypoints) + 1), boxes, scores)

    def reset(self) -> None:
        self.updates = 0
