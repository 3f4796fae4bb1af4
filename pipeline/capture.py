"""Frame sources: camera index, video file, folder of images, stream URL.

Two policies, chosen by the kind of source:

* File sources (`VideoFileSource`, `ImageFolderSource`) are read on demand by
  the caller: every frame, in order, never dropped. The pipeline's bounded
  queues make the reader wait when the models are slower than decoding.
* Live sources (`LiveSource`: cameras, RTSP/HTTP streams) are read by their own
  thread as fast as the device delivers. The thread overwrites a one-slot
  buffer, so `read()` always returns the newest frame; frames overwritten before
  anyone read them are counted in `dropped_frames`. Streams reconnect after a
  failure; a camera that stops delivering ends the stream.

`open_source(spec)` picks the right class from one string (the `--source`
convention): an integer is a camera index, `scheme://...` a stream, a folder a
sequence of images, anything else a video file.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from core.io import read_image
from core.types import Frame

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source could not be opened or failed while reading; the message names it."""


class SourceTimeout(TimeoutError):
    """A live source delivered no new frame within the requested time."""


class Source(Protocol):
    """What the pipeline needs from a source.

    File sources also have `seek(index) -> bool`: go on from frame `index`
    without reopening, False where that cannot be done exactly (the window's
    timeline uses it; the pipeline never seeks).
    """

    name: str
    live: bool

    def read(self, timeout_s: float | None = None) -> Frame | None:
        """Next frame, or None at the end of the source (raises SourceTimeout for a slow live source)."""

    def close(self) -> None: ...


def _image_size(image: np.ndarray) -> tuple[int, int]:
    return int(image.shape[1]), int(image.shape[0])


def _as_bgr(image: np.ndarray, where: str) -> np.ndarray:
    """OpenCV can hand back grey or BGRA images (PNG, some cameras): normalise to (H, W, 3) uint8 BGR."""
    if image.dtype != np.uint8:
        raise SourceError(f"{where}: unsupported pixel type {image.dtype} (8-bit images only)")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _check_readable_file(path: Path) -> None:
    """SourceError for the causes OpenCV reports only as "cannot open": no permission, or an empty file."""
    try:
        with open(path, "rb") as stream:
            first = stream.read(1)
    except PermissionError:
        raise SourceError(f"{path}: permission denied (this user may not read the file)") from None
    except OSError as error:
        raise SourceError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not first:
        raise SourceError(f"{path}: empty file (0 bytes)")


class VideoFileSource:
    """Every frame of a video file, in order, from frame `start_index` (0 by default).

    The first frame is decoded on opening, so an empty, corrupt or unreadable
    file fails here with a `SourceError` naming it and the cause (permission
    denied, empty file, unknown or corrupt format), before any model runs.

    Attributes:
        fps: frames per second from the container (0 when unknown).
        frame_count: frames this source will deliver if the video is whole:
            the container's announced count, capped by `max_frames` (None when unknown).
        frames_announced: frames the container announces (None when unknown).
        frames_decoded: frames delivered so far.
        truncated: True once decoding stopped before the announced end (a cut
            or corrupt file); `max_frames` stopping early is not truncation.
        size_px: (width, height) of the frames.
    """

    live = False

    def __init__(self, path: str | Path, max_frames: int | None = None, start_index: int = 0) -> None:
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        _check_readable_file(self.path)
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"{self.path}: cannot be opened as a video (unknown or corrupt format)")
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        announced = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frames_announced = announced if announced > 0 else None
        self.frame_count = self.frames_announced
        self.truncated = False
        if max_frames is not None and self.frame_count is not None:
            self.frame_count = min(self.frame_count, max_frames)
        self._max_frames = max_frames
        self._next_index = max(0, int(start_index))
        if self._next_index:
            # OpenCV's FFmpeg backend seeks to the key frame before and decodes up to this frame.
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, self._next_index)
        ok, image = self._capture.read()
        if not ok or image is None:
            self._capture.release()
            raise SourceError(f"{self.path}: no frame could be decoded (empty or corrupt video)")
        self._pending: np.ndarray | None = _as_bgr(image, self.name)
        self.size_px = _image_size(self._pending)
        self.last_read_s = 0.0

    def read(self, timeout_s: float | None = None) -> Frame | None:
        started = time.perf_counter()
        if self._max_frames is not None and self._next_index >= self._max_frames:
            return None
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._capture.read()
            if not ok or image is None:
                if self.frames_announced is not None and self._next_index < self.frames_announced:
                    self.truncated = True
                    logger.warning("%s: decoding stopped at frame %d of %d announced",
                                   self.name, self._next_index, self.frames_announced)
                return None
            image = _as_bgr(image, self.name)
        index = self._next_index
        self._next_index += 1
        # The container's frame rate gives exact timestamps; POS_MSEC drifts with some codecs.
        timestamp_s = index / self.fps if self.fps > 0 else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        self.last_read_s = time.perf_counter() - started
        return Frame(index=index, timestamp_s=float(timestamp_s), image=image, source=self.name)

    @property
    def frames_decoded(self) -> int:
        return self._next_index

    def seek(self, index: int) -> bool:
        """Go on from frame `index` in the open file (no reopening); False when the container cannot.

        OpenCV's FFmpeg backend seeks to the key frame before `index` and
        decodes up to it. The frame is decoded here and its position checked
        (the container's count after it must be `index + 1`), so a container
        that cannot seek, or seeks only to key frames, returns False instead
        of delivering the wrong frame under the asked-for index. After False
        the read position is unknown: close the source and open it again at
        `index` (`start_index`).
        """
        index = int(index)
        if index < 0 or (self.frames_announced is not None and index >= self.frames_announced):
            return False
        if not self._capture.set(cv2.CAP_PROP_POS_FRAMES, index):
            return False
        ok, image = self._capture.read()
        if not ok or image is None or round(self._capture.get(cv2.CAP_PROP_POS_FRAMES)) != index + 1:
            return False
        self._pending = _as_bgr(image, self.name)
        self._next_index = index
        return True

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoFileSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def announced_frame_count(path: str | Path) -> int:
    """Frames a video file's container announces, without decoding any (0 when unknown or unreadable)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if capture.isOpened() else 0
    finally:
        capture.release()


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name (frame order for PoseTrack-style folders)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


class ImageListSource:
    """Image files in a given order, as frames with `Frame.path` set and `Frame.index` = position in the list.

    Images are read with `core.io.read_image` (the one EXIF rule). An image
    that cannot be read is skipped with a warning naming it (`on_unreadable=
    "skip"`, counted in `skipped_paths`; the frames after it keep their
    positions as indices, so PoseTrack frame numbers stay aligned) or ends the
    source with a `SourceError` naming it (`"fail"`: evaluation, where every
    listed frame must be predicted). Reading starts at position `start_index`
    (0 by default; indices still count from the start of the list).

    Attributes:
        fps: frame rate assumed for timestamps (images carry none); PoseTrack
            and most camera footage is 25-30 fps.
        frame_count: number of images.
        skipped_paths: unreadable images skipped so far.
    """

    live = False

    def __init__(self, paths, name: str, fps: float = 30.0, max_frames: int | None = None,
                 on_unreadable: str = "skip", start_index: int = 0) -> None:
        if on_unreadable not in ("skip", "fail"):
            raise ValueError(f"on_unreadable must be 'skip' or 'fail', got {on_unreadable!r}")
        self.name = str(name)
        self._paths = [Path(path) for path in paths]
        if max_frames is not None:
            self._paths = self._paths[:max_frames]
        if not self._paths:
            raise SourceError(f"{self.name}: contains no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.fps = fps
        self.frame_count = len(self._paths)
        self.skipped_paths: list[Path] = []
        self._on_unreadable = on_unreadable
        self._next_index = min(max(0, int(start_index)), len(self._paths) - 1)
        self.last_read_s = 0.0
        self._pending = self._next_readable()  # fail here, before any model runs, when nothing is readable
        if self._pending is None:
            raise SourceError(f"{self.name}: none of its {len(self._paths)} images can be read "
                              f"(first: {self.skipped_paths[0]})")
        self.size_px = _image_size(self._pending[1])

    def _next_readable(self) -> tuple[int, np.ndarray] | None:
        """(index, image) of the next readable image from `_next_index` on, or None at the end."""
        while self._next_index < len(self._paths):
            index, path = self._next_index, self._paths[self._next_index]
            self._next_index += 1
            try:
                return index, _as_bgr(read_image(path), str(path))
            except (OSError, ValueError, SourceError) as error:
                if self._on_unreadable == "fail":
                    raise SourceError(f"{path}: frame {index} of {self.name} is missing or unreadable") from error
                self.skipped_paths.append(path)
                logger.warning("%s: frame %d skipped, the image cannot be read (%d skipped so far)",
                               path, index, len(self.skipped_paths))
        return None

    def read(self, timeout_s: float | None = None) -> Frame | None:
        started = time.perf_counter()
        if self._pending is not None:
            found, self._pending = self._pending, None
        else:
            found = self._next_readable()
        if found is None:
            return None
        index, image = found
        timestamp_s = index / self.fps if self.fps > 0 else float(index)
        self.last_read_s = time.perf_counter() - started
        return Frame(index=index, timestamp_s=timestamp_s, image=image, source=self.name,
                     path=str(self._paths[index]))

    def seek(self, index: int) -> bool:
        """Go on from image `index` (the next readable one from there); False when there is none."""
        if not 0 <= int(index) < len(self._paths):
            return False
        self._next_index = int(index)
        self._pending = self._next_readable()
        return self._pending is not None

    def close(self) -> None:
        self._pending = None
        self._next_index = len(self._paths)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFolderSource(ImageListSource):
    """The images of a folder, sorted by file name (see `ImageListSource`; unreadable ones are skipped)."""

    def __init__(self, folder: str | Path, fps: float = 30.0, max_frames: int | None = None,
                 on_unreadable: str = "skip", start_index: int = 0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.folder}")
        super().__init__(list_images(self.folder), name=str(folder), fps=fps, max_frames=max_frames,
                         on_unreadable=on_unreadable, start_index=start_index)


class Capture(Protocol):
    """The part of `cv2.VideoCapture` a live source uses (tests pass fakes)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


class PacedCapture:
    """A video file played at its own frame rate, as a camera would deliver it.

    Used to run a file through the live policy (tests, benchmarks, demos).
    """

    def __init__(self, path: str | Path, fps: float | None = None) -> None:
        self._capture = cv2.VideoCapture(str(path))
        file_fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._period_s = 1.0 / (fps or file_fps or 30.0)
        self._next_due = time.monotonic()

    def isOpened(self) -> bool:
        return self._capture.isOpened()

    def read(self) -> tuple[bool, np.ndarray | None]:
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_due = max(self._next_due + self._period_s, time.monotonic() - self._period_s)
        return self._capture.read()

    def release(self) -> None:
        self._capture.release()


class LiveSource:
    """Newest-frame-wins reader for cameras and streams.

    A reader thread owns the capture device (opens it, reads it, releases it in
    `finally`) and keeps only the latest frame. `read()` returns a frame newer
    than the one it returned last, waiting for one if needed.

    Args:
        open_capture: makes a new capture object; called again to reconnect.
        name: the source as the user gave it (used in messages).
        reconnect: after a read failure, reopen instead of ending (streams).
        reconnect_delay_s: first wait before reopening; doubles up to 5 s.
        open_timeout_s: how long the constructor waits for the first frame.

    Attributes:
        dropped_frames: frames read from the device but replaced by a newer
            one before anyone took them.
        fps: 0 (unknown) — live frames are timestamped with `time.monotonic()`.
    """

    live = True

    def __init__(
        self,
        open_capture: Callable[[], Capture],
        name: str,
        *,
        reconnect: bool = False,
        reconnect_delay_s: float = 0.5,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.fps = 0.0
        self.frame_count = None
        self.last_read_s = 0.0
        self._open_capture = open_capture
        self._reconnect = reconnect
        self._reconnect_delay_s = reconnect_delay_s
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._latest_decode_s = 0.0
        self._latest_taken = True
        self._ended = False
        self._error: BaseException | None = None
        self._frames_read = 0
        self.dropped_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reader, name=f"capture-reader[{name}]", daemon=True)
        self._thread.start()
        with self._condition:
            self._condition.wait_for(lambda: self._latest is not None or self._ended, timeout=open_timeout_s)
            failed = self._latest is None
        if failed:
            self.close()
            if self._error is not None:
                raise SourceError(f"{name}: {self._error}") from self._error
            raise SourceError(f"{name}: no frame within {open_timeout_s:.0f} s (not connected or not streaming)")
        self.size_px = self._latest.size_px

    def _open(self) -> Capture:
        capture = self._open_capture()
        if not capture.isOpened():
            capture.release()
            raise SourceError("cannot be opened (no such camera, wrong URL or not streaming)")
        return capture

    def _reader(self) -> None:
        capture: Capture | None = None
        delay_s = self._reconnect_delay_s
        try:
            while not self._stop.is_set():
                if capture is None:
                    try:
                        capture = self._open()
                    except SourceError as error:
                        if not self._reconnect:
                            raise
                        self._error = error  # reported if the constructor gives up waiting
                        logger.warning("%s: %s; retrying in %.1f s", self.name, error, delay_s)
                        self._stop.wait(delay_s)
                        delay_s = min(2 * delay_s, 5.0)
                        continue
                started = time.perf_counter()
                ok, image = capture.read()
                captured_at = time.monotonic()
                if not ok or image is None:
                    capture.release()
                    capture = None
                    if not self._reconnect:
                        return
                    logger.warning("%s: read failed; reconnecting in %.1f s", self.name, delay_s)
                    self._stop.wait(delay_s)
                    delay_s = min(2 * delay_s, 5.0)
                    continue
                delay_s = self._reconnect_delay_s
                self._error = None
                frame = Frame(index=self._frames_read, timestamp_s=captured_at,
                              image=_as_bgr(image, self.name), source=self.name)
                decode_s = time.perf_counter() - started
                with self._condition:
                    if not self._latest_taken:
                        self.dropped_frames += 1
                    self._latest, self._latest_decode_s, self._latest_taken = frame, decode_s, False
                    self._frames_read += 1
                    self._condition.notify_all()
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises
            self._error = error
        finally:
            if capture is not None:
                capture.release()
            with self._condition:
                self._ended = True
                self._condition.notify_all()

    @property
    def frames_read(self) -> int:
        """Frames the reader thread got from the device so far (returned or dropped)."""
        with self._condition:
            return self._frames_read

    def read(self, timeout_s: float | None = None) -> Frame | None:
        """The newest frame not yet returned; None when the source ended; SourceTimeout if none came in time."""
        with self._condition:
            arrived = self._condition.wait_for(lambda: not self._latest_taken or self._ended, timeout=timeout_s)
            if not self._latest_taken:
                self._latest_taken = True
                self.last_read_s = self._latest_decode_s
                return self._latest
            if self._ended:
                if self._error is not None:
                    raise SourceError(f"{self.name}: {self._error}") from self._error
                return None
            if not arrived:
                raise SourceTimeout(f"{self.name}: no new frame within {timeout_s} s")
            return None  # pragma: no cover - wait_for returned without either condition

    def close(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                # A blocking driver call (a stalled network read) can outlive us; the
                # thread is a daemon and releases the device when that call returns.
                logger.warning("%s: reader still blocked in the capture driver after %.1f s", self.name, timeout_s)

    def __enter__(self) -> "LiveSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_stream_url(spec: str) -> bool:
    return spec.lower().startswith(STREAM_SCHEMES)


def is_live_spec(spec: str | int) -> bool:
    """A camera index ("0") or a stream URL: the `--source` strings that name live sources."""
    text = str(spec)
    return isinstance(spec, int) or text.isdigit() or is_stream_url(text)


def open_source(spec: str | int | Path, *, live: bool | None = None, max_frames: int | None = None,
                frame_folder_fps: float = 30.0, open_timeout_s: float = 10.0,
                start_index: int = 0) -> VideoFileSource | ImageFolderSource | LiveSource:
    """Open a camera index, stream URL, image folder or video file.

    Args:
        spec: `0`/"0" (camera index), "rtsp://..." / "http://..." (stream), a
            folder of images, or a video file.
        live: force the policy. None picks it from the source (cameras and
            streams are live, files are not); True on a video file plays it at
            its frame rate with newest-frame-wins (for trials of the live mode).
        max_frames: stop a file source after this many frames.
        open_timeout_s: how long a camera or stream may take to deliver its first frame.
        start_index: the first frame of a file or folder (frame indices still
            count from the start); ignored for live sources.
    """
    text = str(spec)
    if isinstance(spec, int) or text.isdigit():
        index = int(text)
        if live is False:
            raise ValueError(f"camera {index} is a live source; it cannot be read with live=False")
        return LiveSource(lambda: cv2.VideoCapture(index), name=f"camera {index}", open_timeout_s=open_timeout_s)
    if is_stream_url(text):
        if live is False:
            raise ValueError(f"{text}: a stream is a live source; it cannot be read with live=False")
        return LiveSource(lambda: cv2.VideoCapture(text), name=text, reconnect=True, open_timeout_s=open_timeout_s)
    path = Path(text)
    if path.is_dir():
        if live:
            raise ValueError(f"{path}: a folder of images cannot be read as a live source")
        return ImageFolderSource(path, fps=frame_folder_fps, max_frames=max_frames, start_index=start_index)
    if not path.exists():
        raise FileNotFoundError(f"source not found: {text} (expected a camera index, URL, video file or image folder)")
    if live:
        VideoFileSource(path).close()  # fails early, naming the file, if it cannot be decoded
        return LiveSource(lambda: PacedCapture(path), name=text)
    return VideoFileSource(path, max_frames=max_frames, start_index=start_index)
