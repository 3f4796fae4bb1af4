"""Small file helpers with one rule each: how images are read, how outputs are written.

- `read_image`: every command reads an image file the same way. EXIF
  orientation is ignored, as the official HRNet loader does and as COCO and
  PoseTrack annotations assume (their coordinates are in the stored pixel
  grid), so a JPEG gives the same pixels in `pose`, `track`, `coco eval` and
  `posetrack run`.
- `part_path` / `write_json_atomic`: every output is written under a
  temporary `.part` name in its own folder and renamed when complete, so a
  file under its final name is always whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 BGR pixels of an image file, EXIF orientation ignored.

    Raises FileNotFoundError naming the file when it is missing or not an image.
    """
    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path} (missing or not an image)")
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


def write_json_atomic(path: str | os.PathLike, document) -> Path:
    """Write `document` as JSON to `path` via its `.part` name and a rename.

    On any error the `.part` file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = part_path(path)
    try:
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
