"""The last frames shown, kept so that stepping back (and forward again) needs no reopening of the file.

Stepping back used to reopen the file one frame earlier: the pipeline and the
tracker started over (IDs restarted) and it took 0.3-0.7 s, seconds under
load. The frames just shown are still valid results of the running tracker,
so the window keeps the most recent ones (`RecentFrames`) and shows them
again; only a step back past the oldest kept frame, or a jump on the
timeline, seeks (in the open file: `PipelineWorker.seek`).

Only the order of the frames matters here; the frames are the worker's
`VideoFrame`s (annotated image, buffer, result).
"""

from __future__ import annotations

from collections import deque
from typing import Any

# Pixels of annotated frames kept, all frames together (each frame is held about three times:
# camera image, annotated buffer, QImage). 720p: 24 frames; 1080p: 10.
DEFAULT_BUDGET_BYTES = 200_000_000
MIN_FRAMES = 2


class RecentFrames:
    """The most recent frames shown (oldest first) and a cursor for browsing back through them.

    The cursor is 0 on the newest frame; `back()` and `forward()` move it.
    A new frame from the worker (`add`) puts it back on the newest.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._budget_bytes = budget_bytes
        self._frames: deque[Any] = deque(maxlen=MIN_FRAMES)
        self._cursor = 0

    def clear(self) -> None:
        self._frames.clear()
        self._cursor = 0

    def add(self, frame: Any) -> None:
        """A new frame shown (the first one sizes the store to the budget)."""
        if not self._frames:
            frame_bytes = max(1, 3 * int(frame.buffer.nbytes))
            self._frames = deque(maxlen=max(MIN_FRAMES, self._budget_bytes // frame_bytes))
        self._frames.append(frame)
        self._cursor = 0

    def replace_newest(self, frame: Any) -> None:
        """The newest frame drawn again (new display settings)."""
        if self._frames:
            self._frames[-1] = frame

    @property
    def browsing(self) -> bool:
        """True while an older frame than the newest is on screen."""
        return self._cursor > 0

    @property
    def newest(self) -> Any | None:
        return self._frames[-1] if self._frames else None

    def back(self) -> Any | None:
        """The frame before the one on screen, or None when it is not kept."""
        if self._cursor + 1 >= len(self._frames):
            return None
        self._cursor += 1
        return self._frames[-1 - self._cursor]

    def forward(self) -> Any | None:
        """The frame after the one on screen while browsing, or None on the newest."""
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self._frames[-1 - self._cursor]

    def to_newest(self) -> Any | None:
        self._cursor = 0
        return self.newest

    def __len__(self) -> int:
        return len(self._frames)
