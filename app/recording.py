"""Write annotated frames to a video file that only appears under its name when complete."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from core.io import part_path

LOG = logging.getLogger(__name__)

# OpenCV picks the container from the extension; these are the ones we ask for.
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class VideoRecorder:
    """Records BGR frames to `path`, writing to a `.part` file that is renamed on `close()`.

    A crash mid-recording therefore never leaves a truncated file under the
    final name. The writer opens on the first frame, whose size fixes the
    video size; later frames of another size are resized to it. Not
    thread-safe: one thread (the worker) owns it from first frame to close.
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _FOURCC:
            raise ValueError(f"{self.path}: unsupported video extension, use one of {sorted(_FOURCC)}")
        if not fps > 0:
            raise ValueError(f"{self.path}: recording fps must be positive, got {fps}")
        self.fps = float(fps)
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, image: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame."""
        if self._writer is None:
            self._open(image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames_written += 1

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
        writer = cv2.VideoWriter(str(part_path(self.path)), fourcc, self.fps, (width, height))
        if not writer.isOpened():
            raise OSError(f"{self.path}: OpenCV could not open a video writer ({width}x{height} at {self.fps:g} fps)")
        self._writer = writer
        self._size = (width, height)

    def close(self) -> Path | None:
        """Finish the file and give it its final name; None when no frame was written."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(part_path(self.path), self.path)
        LOG.info("recorded %d frames to %s", self.frames_written, self.path)
        return self.path
