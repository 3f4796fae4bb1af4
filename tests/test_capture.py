"""Frame sources: video file, image folder, live (newest frame wins, reconnect), errors naming the source."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import pipeline.capture
from pipeline.capture import (
    ImageFolderSource,
    LiveSource,
    SourceError,
    SourceTimeout,
    VideoFileSource,
    open_source,
)
from tests.pipeline_fakes import FakeCamera

VIDEO_DIR = Path(__file__).parent / "data" / "posetrack18_mini" / "videos" / "000001_mpiinew_test"
VIDEO = VIDEO_DIR / "000001_mpiinew_test.mp4"


def wait_until_read(source: LiveSource, count: int, timeout_s: float = 30.0) -> None:
    """Wait until the reader thread got `count` frames (a busy test machine can starve it)."""
    deadline = time.monotonic() + timeout_s
    while source.frames_read < count:
        assert time.monotonic() < deadline, f"only {source.frames_read} of {count} frames read"
        time.sleep(0.005)


def read_all(source) -> list:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_video_file_gives_every_frame_in_order_with_timestamps():
    with VideoFileSource(VIDEO) as source:
        assert source.frame_count == 5 and source.size_px == (1280, 720) and source.fps == pytest.approx(30.0)
        frames = read_all(source)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp_s for f in frames] == pytest.approx([i / 30.0 for i in range(5)])
    assert all(f.image.shape == (720, 1280, 3) and f.path is None and f.source == str(VIDEO) for f in frames)
    # The decoded video matches its extracted frames (lossy re-encoding: small mean difference).
    jpg = cv2.imread(str(VIDEO_DIR / "000003.jpg"))
    assert np.abs(frames[3].image.astype(int) - jpg.astype(int)).mean() < 6


def test_max_frames_limits_a_video():
    with VideoFileSource(VIDEO, max_frames=2) as source:
        assert len(read_all(source)) == 2 and source.frame_count == 2


def test_a_video_seeks_in_the_open_file_to_the_exact_frame():
    expected = [frame.image for frame in read_all(VideoFileSource(VIDEO))]
    with VideoFileSource(VIDEO) as source:
        source.read()
        assert source.seek(3)
        frame = source.read()
        assert frame.index == 3 and np.array_equal(frame.image, expected[3])
        assert source.seek(1) and [f.index for f in read_all(source)] == [1, 2, 3, 4]
        # Outside the file: refused, so the caller reopens (and gets the error naming the file).
        assert not source.seek(5) and not source.seek(-1)


class KeyFrameOnlyCapture:
    """`cv2.VideoCapture` of a container that can seek only to its first key frame (frame 0)."""

    opencv_capture = cv2.VideoCapture

    def __init__(self, path):
        self._capture = self.opencv_capture(path)

    def __getattr__(self, name):
        return getattr(self._capture, name)

    def set(self, prop, value):
        return self._capture.set(prop, 0 if prop == cv2.CAP_PROP_POS_FRAMES else value)


def test_a_seek_that_lands_on_another_frame_is_refused(monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", KeyFrameOnlyCapture)
    with VideoFileSource(VIDEO) as source:
        # It decoded frame 0 where 3 was asked for: never delivered as frame 3.
        assert not source.seek(3)


def test_an_image_folder_seeks_to_the_image():
    with ImageFolderSource(VIDEO_DIR) as source:
        assert source.seek(3) and [f.index for f in read_all(source)] == [3, 4]
        assert not source.seek(5)


def test_image_folder_is_sorted_and_sets_the_path():
    with ImageFolderSource(VIDEO_DIR) as source:
        frames = read_all(source)
    assert [Path(f.path).name for f in frames] == [f"{i:06d}.jpg" for i in range(5)]
    assert [f.index for f in frames] == list(range(5))
    assert frames[1].timestamp_s == pytest.approx(1 / 30.0)


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 500])
def test_corrupt_or_empty_video_is_an_error_naming_the_file(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(SourceError, match="bad.mp4"):
        VideoFileSource(bad)


def test_an_empty_or_forbidden_video_says_so(tmp_path, monkeypatch):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match=r"empty.mp4: empty file \(0 bytes\)"):
        VideoFileSource(empty)
    forbidden = tmp_path / "forbidden.mp4"
    forbidden.write_bytes(VIDEO.read_bytes())
    forbidden.chmod(0)
    if os.access(forbidden, os.R_OK):  # root reads it anyway: the refusal the OS would give, in its place
        def refuse(path, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(pipeline.capture, "open", refuse, raising=False)
    with pytest.raises(SourceError, match="forbidden.mp4: permission denied"):
        VideoFileSource(forbidden)


def test_missing_inputs_and_empty_folders_are_errors_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        open_source(tmp_path / "nothing.mp4")
    with pytest.raises(SourceError, match="contains no images"):
        ImageFolderSource(tmp_path)
    (tmp_path / "000000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match="000000.jpg"):
        ImageFolderSource(tmp_path)


def test_open_source_picks_the_kind():
    with open_source(VIDEO) as source:
        assert isinstance(source, VideoFileSource) and not source.live
    with open_source(str(VIDEO_DIR)) as source:
        assert isinstance(source, ImageFolderSource)
    with pytest.raises(ValueError, match="live"):
        open_source(str(VIDEO_DIR), live=True)


def test_live_source_returns_the_newest_frame_and_counts_the_dropped():
    camera = FakeCamera(fps=200.0)
    with LiveSource(lambda: camera, name="fake camera") as source:
        first = source.read(timeout_s=1.0)
        wait_until_read(source, first.index + 11)  # 10 more frames arrive; only the newest is kept
        second = source.read(timeout_s=1.0)
        assert second.index >= first.index + 10
        assert source.dropped_frames >= second.index - first.index - 2
        assert second.timestamp_s <= time.monotonic()
        assert source.read(timeout_s=1.0).index > second.index  # never the same frame twice
    assert camera.released.wait(1.0)


def test_live_source_times_out_when_no_new_frame_arrives():
    with LiveSource(lambda: FakeCamera(fps=2.0), name="slow camera") as source:
        source.read(timeout_s=1.0)
        with pytest.raises(SourceTimeout):
            source.read(timeout_s=0.05)


def test_camera_that_stops_ends_the_stream_and_releases_the_device():
    camera = FakeCamera(fps=500.0, fail_after=5)
    with LiveSource(lambda: camera, name="flaky camera") as source:
        frames = []
        while (frame := source.read(timeout_s=1.0)) is not None:
            frames.append(frame)
    assert 1 <= len(frames) <= 5
    assert camera.released.is_set()


def test_stream_reconnects_after_a_failure():
    cameras = [FakeCamera(fps=500.0, fail_after=3), FakeCamera(fps=500.0)]
    opened = []

    def open_capture():
        opened.append(cameras[min(len(opened), 1)])
        return opened[-1]

    with LiveSource(open_capture, name="rtsp://fake", reconnect=True, reconnect_delay_s=0.01) as source:
        deadline = time.monotonic() + 30.0  # a hang guard: a loaded machine can starve the reader
        while len(opened) < 2 and time.monotonic() < deadline:
            source.read(timeout_s=1.0)
        assert len(opened) == 2
        frame = source.read(timeout_s=1.0)
        assert frame is not None and frame.index >= 3
    assert cameras[0].released.is_set() and cameras[1].released.is_set()


def test_camera_that_cannot_be_opened_is_an_error_naming_it():
    with pytest.raises(SourceError, match="camera 7"):
        LiveSource(lambda: FakeCamera(opened=False), name="camera 7", open_timeout_s=1.0)
    time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name.startswith("capture-reader")]


def test_video_file_played_live_drops_frames_when_the_reader_is_slow():
    with open_source(VIDEO, live=True) as source:
        assert isinstance(source, LiveSource) and source.live
        first = source.read(timeout_s=1.0)
        wait_until_read(source, first.index + 3)  # the file plays at 30 fps meanwhile
        second = source.read(timeout_s=1.0)
        assert second is not None and second.index >= first.index + 2 and source.dropped_frames >= 1
