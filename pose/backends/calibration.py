"""Calibration crops for static int8: network inputs made from the images and videos a user names.

Static quantisation fixes each activation's int8 range from example inputs,
so the examples must look like what the network will see: crops made by the
project's own preprocessing (`pose.transforms.network_input`, the same crop,
colour order and normalisation as `PoseEstimator`), and their mirror images
(the flip test feeds those to the network too). The person boxes come from
`boxes_for(frame)` when the caller has a detector (the pose layer cannot
import one), else the whole image is one box; person boxes calibrate much
better (on the trained test model: 12.5 px mean int8-vs-fp32 displacement
with person boxes, 19.8 px with whole images, 5.5 px with person boxes and
their mirror images). Videos give `frames_per_video` frames spread evenly over
their length.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from core.io import VIDEO_SUFFIXES, read_image
from core.types import Frame
from pose.transforms import boxes_to_centers_scales, network_input

logger = logging.getLogger(__name__)

# Enough crops to see each activation's range; each one costs a full network
# call during calibration (about 0.1 s for W32 on a 2-core CPU).
DEFAULT_MAX_CROPS = 64
DEFAULT_FRAMES_PER_VIDEO = 8


def check_calibration_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The paths as `Path`s; FileNotFoundError / IsADirectoryError naming the first one that is not a file."""
    if not paths:
        raise ValueError("int8 calibration needs at least one image or video (--calibration PATH ...)")
    checked = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"calibration file {path} is a folder, not an image or video")
        if not path.is_file():
            raise FileNotFoundError(f"calibration file {path} does not exist")
        checked.append(path)
    return checked


def video_frames(path: Path, count: int) -> Iterator[Frame]:
    """Up to `count` frames spread evenly over video `path`; ValueError naming it if unreadable."""
    capture = cv2.VideoCapture(os.fspath(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"calibration video {path} could not be opened (not a video OpenCV can decode)")
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        # Without a frame count, take the first `count` frames.
        wanted = set(np.linspace(0, total - 1, num=min(count, total)).round().astype(int).tolist()) if total > 0 else None
        index = found = 0
        while found < count:
            ok, frame = capture.read()
            if not ok:
                break
            if wanted is None or index in wanted:
                found += 1
                yield Frame(index, index / fps if fps > 0 else 0.0, frame, source=os.fspath(path))
            index += 1
        if found == 0:
            raise ValueError(f"calibration video {path} has no readable frames")
    finally:
        capture.release()


def _frames(path: Path, frames_per_video: int) -> Iterator[Frame]:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        yield from video_frames(path, frames_per_video)
    else:
        yield Frame(0, 0.0, read_image(path), source=os.fspath(path), path=os.fspath(path))


def whole_image_box(image: np.ndarray) -> np.ndarray:
    """(1, 4) xyxy box covering the whole (H, W, 3) image, in image px."""
    height, width = image.shape[:2]
    return np.array([[0.0, 0.0, float(width), float(height)]])


def calibration_crops(
    paths: Sequence[str | os.PathLike],
    input_size_hw: tuple[int, int],
    color_rgb: bool = True,
    boxes_for: Callable[[Frame], np.ndarray] | None = None,
    frames_per_video: int = DEFAULT_FRAMES_PER_VIDEO,
    max_crops: int = DEFAULT_MAX_CROPS,
    mirrored: bool = True,
) -> np.ndarray:
    """Network inputs for calibration from image and video files.

    Args:
        paths: image files (anything `core.io.read_image` reads) and videos
            (suffix in `core.io.VIDEO_SUFFIXES`).
        input_size_hw: (H, W) network input px.
        color_rgb: the config's DATASET.COLOR_RGB.
        boxes_for: `core.types.Frame` (image, and its file path for images or its
            index for video frames) -> (N, 4) xyxy person boxes, image px;
            None: the whole image is one box. An image with no boxes gives none.
        frames_per_video: frames taken from each video, evenly spaced.
        max_crops: stop after this many crops (before mirroring).
        mirrored: append the mirror image of every crop.

    Returns:
        (N, 3, H, W) float32 normalised crops, 1 <= N <= max_crops (2x with `mirrored`).

    Raises:
        FileNotFoundError / IsADirectoryError / ValueError naming the file that
        is missing or cannot be decoded; ValueError when no crop came out.
    """
    height, width = int(input_size_hw[0]), int(input_size_hw[1])
    batches, total = [], 0
    for path in check_calibration_paths(paths):
        for frame in _frames(path, frames_per_video):
            image = frame.image
            boxes = whole_image_box(image) if boxes_for is None else np.asarray(boxes_for(frame), np.float64).reshape(-1, 4)
            boxes = boxes[: max_crops - total]
            if len(boxes) == 0:
                continue
            centers, scales = boxes_to_centers_scales(boxes, width / height)
            batches.append(network_input(image, centers, scales, (width, height), color_rgb))
            total += len(boxes)
            if total >= max_crops:
                break
        if total >= max_crops:
            break
    if total == 0:
        raise ValueError(f"no calibration crops came out of {', '.join(os.fspath(p) for p in paths)} (no person boxes)")
    logger.info("%d calibration crops from %d file(s)%s", total, len(paths), " (+ their mirror images)" if mirrored else "")
    crops = np.concatenate(batches, axis=0)
    return np.concatenate([crops, np.ascontiguousarray(crops[..., ::-1])]) if mirrored else crops


def calibration_fingerprint(paths: Sequence[str | os.PathLike]) -> list[list]:
    """What identifies the calibration set for a cache key: resolved path, size and modification time of each file."""
    rows = []
    for path in check_calibration_paths(paths):
        stat = path.stat()
        rows.append([os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return rows
