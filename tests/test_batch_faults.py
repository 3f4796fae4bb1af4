"""Batch `track` on broken inputs and failing disks: nothing broken under a final name, every cause named."""

from __future__ import annotations

import collections
import errno
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import core.io
from core.skeletons import COCO_KEYPOINT_NAMES, COCO_SKELETON
from pipeline.batch import (
    InputVideo,
    Models,
    TrackOptions,
    discover_inputs,
    output_paths,
    run_batch,
    track_video,
)
from tests.pipeline_fakes import FakeDetector, FakeEstimator, FakeTracker

ALL_FORMATS = ("json", "posetrack", "coco", "csv", "video")


def write_video(path: Path, frames: int, size=(64, 48), seed: int = 0) -> Path:
    """An MJPG AVI of random frames (the header, written first, announces `frames`)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
    writer.release()
    return path


def truncated_video(path: Path) -> Path:
    """A 60-frame AVI cut at 60 % of its bytes: it announces 60 frames and decodes about 36."""
    whole = write_video(path.with_name("whole_" + path.name), 60)
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    whole.unlink()
    return path


class CocoFakeEstimator(FakeEstimator):
    """The fake estimator under COCO's keypoint names, so that every output format accepts it."""

    keypoint_names = COCO_KEYPOINT_NAMES
    skeleton = COCO_SKELETON


def batch(inputs, out, formats=("json",), **options):
    return run_batch(inputs, out, formats, detector=FakeDetector(), estimator=CocoFakeEstimator(),
                     tracker=FakeTracker(), progress=False, **options)


# -- truncated videos -------------------------------------------------------------


def test_a_truncated_video_is_marked_incomplete_reported_and_retried(tmp_path):
    video = truncated_video(tmp_path / "cut.avi")
    out = tmp_path / "out"
    summary = batch(discover_inputs(video), out, ("json", "csv"))
    assert summary.truncated == ["cut"] and summary.done == [] and summary.exit_status == 3
    document = json.loads((out / "cut.json").read_text())
    assert document["complete"] is False and document["frames_announced"] == 60
    assert document["frames_decoded"] == document["num_frames"] == summary.frames < 60
    assert (out / "cut.truncated").is_file()
    assert any("TRUNCATED cut" in line and "of 60 announced" in line for line in summary.lines())

    again = batch(discover_inputs(video), out, ("json", "csv"))
    assert again.truncated == ["cut"] and again.skipped == []  # retried, not skipped

    accepted = batch(discover_inputs(video), out, ("json", "csv"), accept_truncated=True)
    assert accepted.skipped == ["cut"] and accepted.exit_status == 0  # the outputs there are accepted as they are
    fresh = batch(discover_inputs(video), tmp_path / "fresh", ("json",), accept_truncated=True)
    assert fresh.done == ["cut"] and fresh.exit_status == 0 and (tmp_path / "fresh" / "cut.truncated").is_file()


def test_a_whole_video_is_complete_and_leaves_no_marker(tmp_path):
    video = write_video(tmp_path / "whole.avi", 12)
    summary = batch(discover_inputs(video), tmp_path / "out")
    assert summary.done == ["whole"] and summary.frames == 12
    document = json.loads((tmp_path / "out" / "whole.json").read_text())
    assert document["complete"] is True and "frames_announced" not in document
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["whole.json"]


# -- unreadable images in a frame folder ------------------------------------------------


def test_an_unreadable_image_is_skipped_named_and_counted_with_indices_kept(tmp_path, caplog):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(5):
        cv2.imwrite(str(folder / f"{index:06d}.jpg"), np.full((48, 64, 3), 40 * index, np.uint8))
    (folder / "000002.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    summary = batch(discover_inputs(folder), out, ("json", "posetrack"))
    assert summary.done == ["frames"] and summary.exit_status == 0
    assert "000002.jpg: frame 2 skipped" in caplog.text
    assert any("1 unreadable image(s) skipped" in line for line in summary.lines())
    document = json.loads((out / "frames.json").read_text())
    assert [frame["frame_index"] for frame in document["frames"]] == [0, 1, 3, 4]
    assert [Path(p).name for p in document["skipped_frames"]] == ["000002.jpg"]
    posetrack = json.loads((out / "frames.posetrack.json").read_text())
    assert [image["frame_id"] for image in posetrack["images"]] == [0, 1, 3, 4]


# -- failing writes ------------------------------------------------------------------------


class _FillingFile:
    """A text file that raises ENOSPC once more than `limit` characters were written (a disk filling up)."""

    def __init__(self, real, limit: int) -> None:
        self._real, self._left = real, limit

    def write(self, text: str) -> int:
        self._left -= len(text)
        if self._left < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._real.write(text)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_a_disk_full_mid_json_names_the_file_and_leaves_nothing_broken(tmp_path, monkeypatch):
    video = write_video(tmp_path / "clip.avi", 20)
    out = tmp_path / "out"
    real_open = open
    monkeypatch.setattr(core.io, "open", lambda *a, **k: _FillingFile(real_open(*a, **k), 3000), raising=False)
    summary = batch(discover_inputs(video), out, ("json", "csv"))
    ((name, reason),) = summary.failed
    assert name == "clip" and summary.exit_status == 1
    assert "no space left on" in reason and "clip." in reason and ".part" in reason
    assert list(out.iterdir()) == []  # no final name, no .part left behind


class _BrokenVideoWriter:
    """A cv2.VideoWriter whose output ends up without an index, as on a full disk (OpenCV reports nothing)."""

    def __init__(self, path, *args) -> None:
        self._path = Path(path)
        self._path.write_bytes(b"\x00\x00\x00\x18ftypisom")  # a header and no moov atom

    def isOpened(self) -> bool:
        return True

    def write(self, image) -> None:
        pass

    def release(self) -> None:
        pass


def _disk(free_bytes: int):
    """What `shutil.disk_usage` returns (total, used, free bytes), for a disk with `free_bytes` left."""
    return collections.namedtuple("usage", "total used free")(1, 1, free_bytes)


@pytest.mark.parametrize("free_bytes, message", [(10, "no space left on"), (10**10, "frames written but the file")])
def test_a_video_that_does_not_read_back_is_never_renamed(tmp_path, monkeypatch, free_bytes, message):
    first = write_video(tmp_path / "in" / "a.avi", 4)
    write_video(tmp_path / "in" / "b.avi", 4, seed=1)
    out = tmp_path / "out"
    assert batch([discover_inputs(first)[0]], out, ("json", "video")).done == ["a"]
    finished = {p.name: p.read_bytes() for p in out.iterdir()}

    monkeypatch.setattr(core.io.cv2, "VideoWriter", _BrokenVideoWriter)
    monkeypatch.setattr(core.io.shutil, "disk_usage", lambda folder: _disk(free_bytes))
    summary = batch(discover_inputs(tmp_path / "in"), out, ("json", "video"), overwrite=False)
    assert summary.skipped == ["a"] and [name for name, _ in summary.failed] == ["b"]
    assert message in summary.failed[0][1] and "b.part.mp4" in summary.failed[0][1]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name.startswith("a")} == finished
    assert not (out / "b.mp4").exists() and not list(out.glob("b*.part*"))
    assert not (out / "b.json").exists() or json.loads((out / "b.json").read_text())["complete"]


@pytest.fixture()
def small_disk(tmp_path):
    """A 300 KB tmpfs (needs root and a kernel that lets this process mount)."""
    folder = tmp_path / "small_disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)],
                                 capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"cannot mount a small tmpfs: {error}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=10)


def test_a_full_disk_fails_the_video_that_hit_it_and_keeps_finished_outputs(tmp_path, small_disk):
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_video(inputs / "v1.avi", 3)
    write_video(inputs / "v2.avi", 40, size=(320, 240))  # random pixels: its mp4 needs far more than 300 KB
    write_video(inputs / "v3.avi", 3, seed=3)
    formats = ("json", "csv", "video")
    summary = batch(discover_inputs(inputs), small_disk, formats)
    assert summary.done == ["v1", "v3"] and [name for name, _ in summary.failed] == ["v2"]
    assert "no space left on" in summary.failed[0][1] and "v2" in summary.failed[0][1]
    names = sorted(p.name for p in small_disk.iterdir())
    # Nothing of v2, no .part files; v2's removed leftovers freed the space v3 needed.
    assert names == ["v1.csv", "v1.json", "v1.mp4", "v3.csv", "v3.json", "v3.mp4"]
    assert core.io.count_video_frames(small_disk / "v1.mp4") == 3
    rerun = batch(discover_inputs(inputs), small_disk, formats)
    assert rerun.skipped == ["v1", "v3"] and [name for name, _ in rerun.failed] == ["v2"]


class _UnopenableVideoWriter(_BrokenVideoWriter):
    def isOpened(self) -> bool:
        return False


def test_a_video_writer_that_cannot_open_on_a_full_disk_says_so(tmp_path, monkeypatch):
    video = write_video(tmp_path / "clip.avi", 3)
    monkeypatch.setattr(core.io.cv2, "VideoWriter", _UnopenableVideoWriter)
    monkeypatch.setattr(core.io.shutil, "disk_usage", lambda folder: _disk(0))
    ((name, reason),) = batch(discover_inputs(video), tmp_path / "out", ("video",)).failed
    assert "no space left on" in reason and "clip.part.mp4" in reason and "codec" not in reason


# -- the unit of work -------------------------------------------------------------------------


def test_track_video_reports_one_input_without_raising(tmp_path):
    video = write_video(tmp_path / "clip.avi", 6)
    item = InputVideo(video, "clip", "video")
    models = Models(FakeDetector(), CocoFakeEstimator(), FakeTracker())
    result = track_video(item, output_paths(tmp_path / "out", item, ALL_FORMATS), models, TrackOptions(progress=False))
    assert result.status == "done" and result.frames == 6 and result.seconds > 0 and result.fps > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "clip.coco.json", "clip.csv", "clip.json", "clip.mp4", "clip.posetrack.json"]
    missing = InputVideo(tmp_path / "gone.avi", "gone", "video")
    failed = track_video(missing, output_paths(tmp_path / "out", missing, ("json",)), models,
                         TrackOptions(progress=False))
    assert failed.status == "failed" and "gone.avi" in failed.reason
