"""The unit of work of a batch run and its result: plain data shared by `pipeline.batch` and `pipeline.engines`.

Kept apart from `pipeline.batch` so that the engines, which run units of work
in this process or on other machines, need no tracking code, and the tracking
code needs no engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from core.io import part_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Models:
    """The models one input is tracked with (shared by all inputs of a batch run).

    Attributes:
        detector: `detector(frames) -> list[Detections]` (the `detector.Detector` protocol).
        estimator: `estimate_many(images, boxes_per_image)`, with `keypoint_names` and `skeleton`.
        tracker: `reset()` and `update(...)` (tracker.PoseTracker), or None for IDs of -1.
    """

    detector: object
    estimator: object
    tracker: object | None = None


VIDEO_STATUSES = ("done", "truncated", "failed", "interrupted", "busy", "skipped")


@dataclass(frozen=True)
class VideoResult:
    """What `track_video` did with one input (plain data: picklable, for other processes).

    Attributes:
        name: the input's output name.
        status: "done", "truncated" (decoded fewer frames than announced;
            outputs written and marked, retried by a rerun unless accepted),
            "failed" (`reason` says why; its `.part` files are removed, and a
            format that finished before another failed may exist, but a
            rerun redoes the input), "interrupted" (Ctrl-C), "busy" (another
            process holds its outputs' lock, `core.output_lock`: left to it) or
            "skipped" (another run completed it while this one waited in the queue).
        frames: frames tracked and written.
        seconds: wall time of the input, from opening it to its outputs' close.
        reason: why it failed or is truncated ("" when done).
        frames_announced: frames the container announced (None when unknown).
        skipped_frames: unreadable images of a frame folder that were skipped.
        profile: `PipelineProfile.as_dict()` of the run (`TrackOptions.profile`), else None.
        pose_backend: which backend ran the pose network and how close it is to eager fp32
            (`PoseEstimator.describe_backend()`), None when the estimator does not say.
        trial: a `--max-frames` trial that stopped at its limit: the outputs
            cover only the input's first frames (marked `<name>.trial`).
    """

    name: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    reason: str = ""
    frames_announced: int | None = None
    skipped_frames: int = 0
    profile: dict | None = None
    pose_backend: dict | None = None
    trial: bool = False

    def __post_init__(self) -> None:
        if self.status not in VIDEO_STATUSES:
            raise ValueError(f"VideoResult status must be one of {VIDEO_STATUSES}, got {self.status!r}")

    @property
    def fps(self) -> float:
        """Frames per second over the whole input (0 when nothing ran)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class InputInterrupted(KeyboardInterrupt):
    """Ctrl-C while one input was tracked; `frames`: how many were tracked and written before it (for the summary)."""

    def __init__(self, frames: int) -> None:
        super().__init__(f"interrupted after {frames} frames")
        self.frames = frames


def remove_partial_files(paths: Iterable[Path]) -> list[Path]:
    """Delete the `.part` files of these outputs (a failed input's leftovers); returns those removed."""
    removed = []
    for path in paths:
        part = part_path(path)
        try:
            part.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            logger.warning("cannot remove %s: %s", part, error.strerror or error)
            continue
        removed.append(part)
    return removed
