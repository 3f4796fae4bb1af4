"""Write annotated frames to a video file that only appears under its name when complete."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from core.io import AtomicVideoWriter

logger = logging.getLogger(__name__)

# OpenCV picks the container from the extension; these are the ones we ask for.
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class VideoRecorder:
    """Records BGR frames to `path` through `core.io.AtomicVideoWriter` (`.part` file, checked, renamed on `close()`).

    A crash or a full disk mid-recording therefore never leaves a truncated
    file under the final name. The writer opens on the first frame, whose size
    fixes the video size; later frames of another size are resized to it. Not
    thread-safe: one thread (the worker) owns it from first frame to close.
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _FOURCC:
            raise ValueError(f"{self.path}: unsupported video extension, use one of {sorted(_FOURCC)}")
        if not fps > 0:
            raise ValueError(f"{self.path}: recording fps must be positive, got {fps}")
        self.fps = float(fps)
        self._video = AtomicVideoWriter(self.path, self.fps, _FOURCC[self.path.suffix.lower()])

    @property
    def frames_written(self) -> int:
        return self._video.frames_written

    def write(self, image: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame (OSError naming the file when it cannot be written)."""
        if self._video.is_open and (image.shape[1], image.shape[0]) != self._video.size_px:
            image = cv2.resize(image, self._video.size_px, interpolation=cv2.INTER_AREA)
        self._video.write(image)

    def close(self) -> Path | None:
        """Finish the file and give it its final name; None when no frame was written.

        Raises OSError naming the file (and removes it) when it does not read
        back with every frame, e.g. "no space left on <path>".
        """
        if not self._video.is_open:
            return None
        path = self._video.commit()
        logger.info("recorded %d frames to %s", self.frames_written, path)
        return path
