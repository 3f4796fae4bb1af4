"""Progress of one input: a bar on a terminal, log lines elsewhere, and the pose crops done in between frames.

On a terminal, `InputProgress` is a tqdm bar of frames. In a pipe or a CI log
a bar's carriage-return redraws would run into the log lines, so there it
logs one line every `log_every_s` seconds instead. Either way a frame with
many people, whose crops take many network calls, still shows movement: a
ticker thread reads the estimator's `crops_done` counter (`pose.PoseEstimator`)
twice a second and shows the crops done since the last frame.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable

from tqdm import tqdm

logger = logging.getLogger(__name__)

TICK_S = 0.5


def on_terminal() -> bool:
    """Whether progress bars can redraw in place (stderr is a terminal)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class InputProgress:
    """Frames of one input done so far, shown while the pipeline runs (a context manager).

    Args:
        name: the input, shown in front of the bar or the log line.
        total: frames expected (None when unknown).
        enabled: False shows nothing (`--no-progress`).
        crops_done: returns the pose crops run so far (a counter that only
            grows), or None when the estimator keeps none.
        terminal: draw a bar (None: when stderr is a terminal).
        log_every_s: seconds between two log lines when there is no bar.
    """

    def __init__(self, name: str, total: int | None, *, enabled: bool = True,
                 crops_done: Callable[[], int] | None = None, terminal: bool | None = None,
                 log_every_s: float = 10.0) -> None:
        self.name = name
        self.total = total
        self.frames = 0
        self._enabled = enabled
        self._crops_done = crops_done
        self._terminal = on_terminal() if terminal is None else terminal
        self._log_every_s = log_every_s
        self._bar: tqdm | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._crops_at_frame = 0
        self._started = 0.0

    def __enter__(self) -> "InputProgress":
        if not self._enabled:
            return self
        self._started = time.perf_counter()
        self._crops_at_frame = self._crops()
        if self._terminal:
            self._bar = tqdm(total=self.total, unit="frame", desc=self.name, position=1, leave=False)
        self._thread = threading.Thread(target=self._tick, name=f"progress[{self.name}]", daemon=True)
        self._thread.start()
        return self

    def _crops(self) -> int:
        return int(self._crops_done()) if self._crops_done is not None else 0

    def update(self, frames: int = 1) -> None:
        """`frames` more frames are done."""
        with self._lock:
            self.frames += frames
            self._crops_at_frame = self._crops()
            if self._bar is not None:
                self._bar.set_postfix_str("", refresh=False)
                self._bar.update(frames)

    def _tick(self) -> None:
        last_log = time.perf_counter()
        while not self._stop.wait(TICK_S):
            with self._lock:
                pending = self._crops() - self._crops_at_frame
                if self._bar is not None:
                    if pending:  # a frame with many people: its crops are moving
                        self._bar.set_postfix_str(f"{pending} crops of the next frames done")
                    continue
                if time.perf_counter() - last_log >= self._log_every_s:
                    last_log = time.perf_counter()
                    elapsed = last_log - self._started
                    of_total = f"/{self.total}" if self.total else ""
                    logger.info("%s: %d%s frames (%.1f fps)%s", self.name, self.frames, of_total,
                                self.frames / elapsed if elapsed > 0 else 0.0,
                                f", {pending} person crops of the next frames done" if pending else "")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()
