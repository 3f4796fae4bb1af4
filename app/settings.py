"""Options the person changes while the video runs, shared between the GUI and the worker.

The GUI thread writes them when a control changes; the worker thread reads a
consistent snapshot once per frame. A lock guards the swap, so the worker
never sees half an update (say a new tracker option without its sibling).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ViewSettings:
    """One consistent set of live options.

    Attributes:
        detection_threshold: person boxes scoring below this are not shown, and
            it is handed to the detector's `score_threshold` when it has one.
        keypoint_threshold: keypoints scoring below this are not drawn.
        show_boxes: draw each person's box.
        show_trails: draw the recent positions of each track.
        show_labels: write each person's track ID.
        show_skeletons: draw the skeleton's edges.
        show_keypoints: draw a dot on each keypoint.
        highlight_track_id: the track drawn thicker (the one picked in the
            track list or clicked on), or None.
        trail_length: how many recent positions a trail keeps.
        tracker_options: keyword arguments of `tracker.PoseTracker`; a change
            rebuilds the tracker (IDs restart).
    """

    detection_threshold: float = 0.5
    keypoint_threshold: float = 0.3
    show_boxes: bool = True
    show_trails: bool = True
    show_labels: bool = True
    show_skeletons: bool = True
    show_keypoints: bool = True
    highlight_track_id: int | None = None
    trail_length: int = 30
    tracker_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("detection_threshold", "keypoint_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.trail_length < 1:
            raise ValueError(f"trail_length must be at least 1, got {self.trail_length}")


class SharedSettings:
    """A lock-protected `ViewSettings` with a version number that counts changes."""

    def __init__(self, initial: ViewSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = initial or ViewSettings()
        self._version = 0

    def snapshot(self) -> tuple[ViewSettings, int]:
        """The current settings and their version (it grows by one per `update`)."""
        with self._lock:
            return self._settings, self._version

    def get(self) -> ViewSettings:
        with self._lock:
            return self._settings

    def update(self, **changes: Any) -> ViewSettings:
        """Replace some fields; raises ValueError (and changes nothing) for a bad value."""
        with self._lock:
            if "tracker_options" in changes:
                changes["tracker_options"] = dict(changes["tracker_options"])
            self._settings = dataclasses.replace(self._settings, **changes)
            self._version += 1
            return self._settings
