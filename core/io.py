"""Small file helpers with one rule each: how images are read, how outputs are written.

- `read_image`: every command reads an image file the same way. EXIF
  orientation is ignored, as the official HRNet loader does and as COCO and
  PoseTrack annotations assume (their coordinates are in the stored pixel
  grid), so a JPEG gives the same pixels in `pose`, `track`, `coco eval` and
  `posetrack run`.
- The one atomic writer: every output is written under a temporary `.part`
  name in its own folder (`part_path`) and renamed only after every write,
  the flush and the close succeeded and (for videos) the file reads back with
  all its frames, so a file under its final name is always whole.
  `AtomicTextFile` (streamed text: JSON, CSV), `write_json_atomic` /
  `write_text_atomic` (whole documents) and `AtomicVideoWriter` (mp4/avi via
  OpenCV, which reports no write errors itself) share that rule. A failed
  write raises an `OSError` naming the file (`write_error`): "no space left on
  <path>" when the disk is full.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Below this many free bytes a video writer that failed is taken to have run out of space
# (OpenCV's writer reports no error codes, so the free space is the evidence).
_LOW_SPACE_BYTES = 1 << 20


def is_cut_short_jpeg(data: bytes) -> bool:
    """A JPEG whose last scan has no end-of-image marker after it: the file was cut short.

    libjpeg decodes such a file anyway, filling the missing rows with grey, and
    only prints "Premature end of JPEG file". Inside entropy-coded data 0xFF is
    always followed by 0x00 or a restart marker, so 0xFFD9 after the last
    start-of-scan (0xFFDA) is the real end (an EXIF thumbnail's own markers lie
    before the main image's scan).
    """
    return data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 BGR pixels of an image file, EXIF orientation ignored.

    Raises, naming the file: FileNotFoundError when it does not exist,
    IsADirectoryError for a folder, PermissionError when it may not be read,
    ValueError when it is empty, a JPEG cut short (`is_cut_short_jpeg`), or
    not decodable by OpenCV. The bytes are decoded from memory, so OpenCV and
    libjpeg print nothing of their own.
    """
    name = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"image {name} is a folder, not an image file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {name} does not exist")
    try:
        data = Path(path).read_bytes()
    except PermissionError as error:
        raise PermissionError(error.errno, f"image {name}: permission denied") from None
    if not data:
        raise ValueError(f"image {name} is an empty file")
    if is_cut_short_jpeg(data):
        raise ValueError(f"image {name} is cut short (a JPEG without its end: a partial copy or download)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError(f"image {name} could not be read (not an image format OpenCV can decode)")
    return image


def read_json(path: str | os.PathLike, what: str = "") -> object:
    """Parse JSON file `path`, with errors that name the file (as "<what> <path>")."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    if path.is_dir():
        raise IsADirectoryError(f"{name} is a folder, not a JSON file")
    if not path.is_file():
        raise FileNotFoundError(f"{name} does not exist")
    try:
        with path.open("r", encoding="utf-8") as stream:
            return json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{name} is not valid JSON: {error}") from error


def part_path(path: str | os.PathLike) -> Path:
    """The temporary name an output is written under until it is complete.

    Videos keep their suffix (`clip.part.mp4`) so that the container is chosen
    by the suffix as usual; other files get `.part` appended.
    """
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return path.with_name(f"{path.stem}.part{path.suffix}")
    return path.with_name(path.name + ".part")


def write_error(error: OSError, path: str | os.PathLike) -> OSError:
    """An OSError (same errno) whose message names `path`: "no space left on <path>" for a full disk or quota."""
    if error.errno in _NO_SPACE_ERRNOS:
        message = f"no space left on {path}"
    else:
        message = f"{path}: cannot write ({error.strerror or error})"
    return OSError(error.errno, message)


def _has_little_space(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < _LOW_SPACE_BYTES
    except OSError:
        return False


def commit_part(part: Path, path: Path) -> Path:
    """Give a finished `.part` file its final name (an atomic rename in the same folder)."""
    try:
        os.replace(part, path)
    except OSError as error:
        raise write_error(error, path) from error
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """The `.part` path for a writer that needs a file name (torch.save, savefig, csv), renamed when it is done.

        with atomic_output(out / "log.csv") as part:
            write_somehow(part)

    On an error inside the block the `.part` file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(path)
    try:
        yield part
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    commit_part(part, path)


def _same_file(status: os.stat_result, path: Path) -> bool:
    """Whether `path` is still the file whose open descriptor gave `status`."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return (current.st_ino, current.st_dev) == (status.st_ino, status.st_dev)


class AtomicTextFile:
    """A text (or, with `binary=True`, bytes) file written under `part_path(path)`, renamed to `path` by `commit()`.

    `write()` raises an OSError naming the file when the disk is full (or any
    write fails); `commit()` flushes, syncs and closes first and renames only
    when all of that succeeded, else removes the `.part` file and raises;
    `abandon(keep)` closes and keeps the `.part` file (for inspection after a
    stop) or removes it.
    """

    def __init__(self, path: str | os.PathLike, newline: str | None = None, binary: bool = False) -> None:
        self.path = Path(path)
        self.part = part_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if binary:
                self._file = open(self.part, "wb")  # noqa: SIM115 - owned, closed in commit/abandon
            else:
                self._file = open(self.part, "w", encoding="utf-8", newline=newline)  # noqa: SIM115
        except OSError as error:
            raise write_error(error, self.part) from error

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, text: str | bytes) -> int:
        try:
            return self._file.write(text)
        except OSError as error:
            raise write_error(error, self.part) from error

    def commit(self) -> Path:
        """Flush, sync, close, rename; on any failure the `.part` file is removed and an OSError names the file.

        Renames only the file this writer wrote whole: a `.part` name that another
        process replaced, renamed away or wrote beyond this writer's end is left
        alone (and reported), never given the final name.
        """
        try:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
                written = os.fstat(self._file.fileno())
                ours = self._file.tell() == written.st_size and _same_file(written, self.part)
            finally:
                self._file.close()
        except OSError as error:
            self.part.unlink(missing_ok=True)
            raise write_error(error, self.part) from error
        if not ours:
            raise OSError(errno.EBUSY, f"{self.part} was changed by another process while this one wrote it "
                                       f"(two runs writing the same output?); not renamed to {self.path.name}")
        return commit_part(self.part, self.path)

    def abandon(self, keep: bool = True) -> None:
        """Close without renaming; keep the `.part` file or remove it. Never raises for a failed flush."""
        try:
            self._file.close()
        except OSError as error:
            logger.warning("%s", write_error(error, self.part))
        if not keep:
            self.part.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str | bytes) -> Path:
    """Write `text` (str, or bytes) to `path` through the atomic writer (`path` is left as it was on an error)."""
    out = AtomicTextFile(path, binary=isinstance(text, bytes))
    try:
        out.write(text)
    except BaseException:
        out.abandon(keep=False)
        raise
    return out.commit()


def write_json_atomic(path: str | os.PathLike, document, indent: int | None = None) -> Path:
    """Write `document` as JSON to `path` through the atomic writer.

    On any error the `.part` file is removed and `path` is left as it was; a
    full disk raises OSError "no space left on <path>.part".
    """
    out = AtomicTextFile(path)
    try:
        json.dump(document, out, indent=indent)
    except BaseException:
        out.abandon(keep=False)
        raise
    return out.commit()


def count_video_frames(path: str | os.PathLike) -> int | None:
    """Frames a video file announces when re-opened (its index), or None when it cannot be opened."""
    capture = cv2.VideoCapture(os.fspath(path))
    try:
        if not capture.isOpened():
            return None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:  # no index: count by decoding
            while capture.grab():
                count += 1
        return count
    finally:
        capture.release()


class AtomicVideoWriter:
    """A video written with OpenCV under its `.part` name, renamed only when it reads back whole.

    OpenCV's writer neither raises nor returns an error when a write fails (a
    full disk leaves a file without its index), so `commit()` re-opens the
    file and checks that it holds every frame given; a file that does not is
    removed and reported ("no space left on <path>" when the disk is full).

    Args:
        path: final file name; its suffix picks the container.
        fps: frame rate written in the container.
        fourcc: four-character codec code ("mp4v", "MJPG").
    """

    def __init__(self, path: str | os.PathLike, fps: float, fourcc: str = "mp4v") -> None:
        self.path = Path(path)
        self.part = part_path(self.path)
        self.fps = float(fps)
        self.fourcc = fourcc
        self.frames_written = 0
        self.size_px: tuple[int, int] | None = None
        self._writer = None

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def open(self, size_px: tuple[int, int]) -> None:
        """Create the `.part` file for frames of (width, height) `size_px`; OSError naming the cause."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(error, self.path.parent) from error
        writer = cv2.VideoWriter(os.fspath(self.part), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size_px)
        if not writer.isOpened():
            writer.release()
            self.part.unlink(missing_ok=True)
            if _has_little_space(self.part.parent):
                raise OSError(errno.ENOSPC, f"no space left on {self.part}")
            if not os.access(self.part.parent, os.W_OK):
                raise PermissionError(errno.EACCES, f"{self.part}: the folder is not writable")
            raise OSError(f"{self.part}: OpenCV cannot write a {self.fourcc} video "
                          f"({size_px[0]}x{size_px[1]} at {self.fps:g} fps; codec missing in this OpenCV build?)")
        self._writer, self.size_px = writer, tuple(size_px)

    def write(self, image: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame of the opened size (opens on the first frame)."""
        if self._writer is None:
            self.open((int(image.shape[1]), int(image.shape[0])))
        self._writer.write(image)
        self.frames_written += 1

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def commit(self) -> Path:
        """Finish the file, check it reads back with every frame, rename it; else remove it and raise OSError."""
        self._release()
        readable = count_video_frames(self.part) if self.part.exists() else None
        if readable != self.frames_written:
            self.part.unlink(missing_ok=True)
            if _has_little_space(self.part.parent):
                raise OSError(errno.ENOSPC, f"no space left on {self.part}")
            found = "cannot be read back" if readable is None else f"reads back {readable} frames"
            raise OSError(errno.EIO, f"{self.part}: {self.frames_written} frames written but the file {found}")
        return commit_part(self.part, self.path)

    def abandon(self, keep: bool = True) -> None:
        """Close without renaming; keep the `.part` file or remove it."""
        self._release()
        if not keep:
            self.part.unlink(missing_ok=True)
