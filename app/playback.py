"""Playing a file in real time: frames leave the source at the file's frame rate times a speed, late ones are dropped.

The pipeline reads a file as fast as the models allow (what `track` wants).
The window wants a video player: a 10 fps file plays at 10 fps, and when
detection and pose take longer than a frame, the frames that are already late
are skipped at the source, so the picture keeps to the clock instead of
falling behind with a queue. `PacedSource` wraps the opened file source for
the pipeline's capture stage and does both.

The clock counts playing time only: `set_paused(True)` freezes it (frames
then leave at once, for stepping), and resuming, a new speed or a seek
(`seek`, in the open file) starts it again from the next frame, so nothing is dropped for the time spent paused.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from core.types import Frame
from pipeline.capture import SourceTimeout

# The speeds the window offers; None plays as fast as the models allow.
SPEEDS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, None)


def speed_label(speed: float | None) -> str:
    return "as fast as possible" if speed is None else f"{speed:g}x"


class PacedSource:
    """A file source (`pipeline.capture.VideoFileSource`, `ImageFolderSource`) read at `fps * speed` frames per second.

    Args:
        source: the opened source; its `fps` sets the pace (0: unknown, no pacing).
        speed: playback speed (1.0: the file's frame rate); None: no pacing.
        paused: start with the clock frozen.
        clock, sleep: monotonic seconds and waiting (tests pass a fake clock).

    Attributes:
        dropped_frames: frames read from the file and skipped because they were
            already late (the pipeline reports it as the frame's `dropped_frames`).

    A frame not yet due makes `read` wait (never past `timeout_s`) and raise
    `SourceTimeout`, as a live source without a new frame does; the next call
    returns it. So the pipeline's capture stage checks its stop flag, and its
    capture time, where latency starts, is when the frame was due.
    """

    live = False

    def __init__(self, source: Any, speed: float | None = 1.0, paused: bool = False, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._source = source
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._speed = speed
        self._paused = paused
        self._anchor: tuple[float, int] | None = None  # (monotonic time, frame index due then)
        self._held: Frame | None = None  # read before its time, handed over next
        self.dropped_frames = 0

    def __getattr__(self, name: str) -> Any:
        # name, fps, frame_count, size_px, last_read_s, ...: the file source's.
        return getattr(self._source, name)

    @property
    def speed(self) -> float | None:
        return self._speed

    def set_speed(self, speed: float | None) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"playback speed must be positive or None, got {speed}")
        with self._lock:
            self._speed = speed
            self._anchor = None

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused
            self._anchor = None

    def _frame_period_s(self) -> float | None:
        fps = float(getattr(self._source, "fps", 0.0) or 0.0)
        if self._speed is None or fps <= 0:
            return None
        return 1.0 / (fps * self._speed)

    def _due_s(self, index: int, now: float) -> float | None:
        """When frame `index` is due (monotonic seconds); None: at once. Anchors the clock when it has none."""
        period = self._frame_period_s()
        if period is None or self._paused:
            return None
        if self._anchor is None:
            self._anchor = (now, index)
        anchor_time, anchor_index = self._anchor
        return anchor_time + (index - anchor_index) * period

    def read(self, timeout_s: float | None = None) -> Frame | None:
        frame, self._held = self._held, None
        if frame is None:
            frame = self._source.read(timeout_s)
        while frame is not None:
            now = self._clock()
            with self._lock:
                due = self._due_s(frame.index, now)
                later = self._due_s(frame.index + 1, now)
            if due is not None and later is not None and later <= now and not self._is_last(frame.index):
                # The next frame is due already: this one is late, skip it (the file's last one is always shown).
                self.dropped_frames += 1
                frame = self._source.read(timeout_s)
                continue
            if due is not None and due > now:
                # Not yet: wait (within the timeout) and hand it over on the next call.
                self._held = frame
                self._sleep(due - now if timeout_s is None else min(due - now, timeout_s))
                raise SourceTimeout(f"{self.name}: frame {frame.index} not due yet")
            return frame
        return None

    def seek(self, index: int) -> bool:
        """The file source's `seek` (False where it has none); the clock starts again from the frame sought.

        Called only while no pipeline reads this source (the worker stops one before seeking).
        """
        seek = getattr(self._source, "seek", None)
        if seek is None or not seek(index):
            return False
        with self._lock:
            self._held = None
            self._anchor = None
        return True

    def _is_last(self, index: int) -> bool:
        count = getattr(self._source, "frame_count", None)
        return count is not None and index >= count - 1

    def close(self) -> None:
        self._source.close()
