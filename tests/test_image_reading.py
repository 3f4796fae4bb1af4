"""One image reader, one EXIF rule: every command sees a JPEG's stored pixels, as COCO/PoseTrack annotations do."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from core.io import read_image
from evaluation.prediction import predict_listed_images
from pipeline.capture import ImageFolderSource


def exif_rotated_jpeg(path, width=64, height=32):
    """A JPEG whose EXIF says "rotate 90 degrees clockwise" (orientation 6); stored as width x height."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (0, 0, 255)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)  # Orientation, SHORT, count 1, value 6
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    data = encoded.tobytes()
    path.write_bytes(data[:2] + app1 + data[2:])
    return path


def test_every_reader_ignores_the_exif_orientation(tmp_path):
    path = exif_rotated_jpeg(tmp_path / "000000.jpg")
    assert cv2.imread(str(path)).shape[:2] == (64, 32)  # OpenCV's default would rotate it: the tag is there
    stored = read_image(path)
    assert stored.shape[:2] == (32, 64)
    with ImageFolderSource(tmp_path) as source:  # track's frame folders
        assert np.array_equal(source.read().image, stored)

    seen = []

    class Recorder:
        def write(self, result):
            seen.append(result.frame.image)

        def close(self, complete):
            pass

    class NoPeople:
        def __call__(self, frames):
            from core.types import Detections

            return [Detections.empty() for _ in frames]

    # posetrack run and coco eval read their listed frames through this loop.
    predict_listed_images([path], "listed", NoPeople(), estimator=None, sinks=[Recorder()], progress=False)
    assert len(seen) == 1 and np.array_equal(seen[0], stored)


@pytest.mark.parametrize("kind, error, message", [
    ("missing", FileNotFoundError, "does not exist"),
    ("folder", IsADirectoryError, "is a folder"),
    ("garbage", ValueError, "could not be read"),
])
def test_read_errors_name_the_file(tmp_path, kind, error, message):
    path = tmp_path / "x.jpg"
    if kind == "folder":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"not an image")
    with pytest.raises(error, match=message) as info:
        read_image(path)
    assert "x.jpg" in str(info.value)


def test_a_jpeg_cut_in_half_in_a_frame_folder_is_skipped_and_counted(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    for index in range(3):
        (tmp_path / f"{index:06d}.jpg").write_bytes(data)
    (tmp_path / "000001.jpg").write_bytes(data[: len(data) // 2])  # libjpeg would decode it, grey below the cut
    with pytest.raises(ValueError, match="000001.jpg is cut short"):
        read_image(tmp_path / "000001.jpg")
    with ImageFolderSource(tmp_path) as source:
        indices = [frame.index for frame in iter(source.read, None)]
        assert indices == [0, 2] and [path.name for path in source.skipped_paths] == ["000001.jpg"]
