"""The desktop app, offscreen: frames arrive and are drawn, controls work, closing stops everything.

The window runs the real pipeline (capture, detection, pose, tracking, drawing)
on the 5-frame PoseTrack clip with the tiny seeded HRNet of
tests/data/hrnet_reference and boxes read from a detection file (no network).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QRect, QSize, Qt  # noqa: E402
from PyQt6.QtGui import QImage  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.model_loader import ModelLoader, Models  # noqa: E402
from app.settings import ViewSettings  # noqa: E402
from app.video_view import fit_rect  # noqa: E402

VIDEO = "posetrack18_mini/videos/000001_mpiinew_test/000001_mpiinew_test.mp4"
VIDEO_FRAMES = 5
# Three people of the clip, xyxy px in the 1280x720 frames, with their scores.
PEOPLE = [(356, 270, 564, 576, 0.95), (604, 260, 840, 524, 0.9), (600, 400, 850, 530, 0.8)]
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def video(data_dir) -> str:
    return str(data_dir / VIDEO)


def write_detections(path: Path, frames: int, scale: float = 1.0) -> Path:
    """A COCO-results file with the three people in every frame (image id = frame index)."""
    entries = [
        {"image_id": index, "category_id": 1, "bbox": [scale * x1, scale * y1, scale * (x2 - x1), scale * (y2 - y1)],
         "score": score}
        for index in range(frames) for x1, y1, x2, y2, score in PEOPLE
    ]
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture(scope="module")
def det_file(tmp_path_factory) -> Path:
    return write_detections(tmp_path_factory.mktemp("dets") / "detections.json", VIDEO_FRAMES)


@pytest.fixture(scope="module")
def long_video(video, tmp_path_factory) -> tuple[str, Path]:
    """A 40-frame, half-size clip (the 5 frames back and forth) and its detection file.

    The pipeline works a few frames ahead of the display, so checks of what
    happens "from the next frames on" need more frames than the 5-frame clip has.
    """
    folder = tmp_path_factory.mktemp("long")
    capture = cv2.VideoCapture(video)
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA))
    capture.release()
    path = folder / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    sequence = (frames + frames[::-1]) * 4
    for image in sequence:
        writer.write(image)
    writer.release()
    return str(path), write_detections(folder / "detections.json", len(sequence), scale=0.5)


def model_args(hrnet_reference_dir: Path, det_file: Path) -> argparse.Namespace:
    """The options `main.py gui` would parse for the tiny model and the detection file."""
    from cli.options import add_detector_arguments
    from cli.options import add_pose_arguments

    parser = argparse.ArgumentParser()
    add_pose_arguments(parser)
    add_detector_arguments(parser)
    return parser.parse_args([
        "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
        "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
        "--det-file", str(det_file), "--device", "cpu", "--no-flip", "--offline",
    ])


@pytest.fixture(scope="module")
def args(hrnet_reference_dir, det_file) -> argparse.Namespace:
    return model_args(hrnet_reference_dir, det_file)


@pytest.fixture(scope="module")
def models(args) -> Models:
    from app.model_loader import build_models

    return build_models(args, lambda percent, step: None)


class CountingEstimator:
    """Forwards to a real estimator and counts the frames it was asked about."""

    def __init__(self, estimator) -> None:
        self._estimator = estimator
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._estimator, name)

    def __call__(self, image, boxes):
        return self._estimator(image, boxes)

    def estimate_many(self, images, boxes_per_image):
        self.calls += len(images)
        return self._estimator.estimate_many(images, boxes_per_image)


@pytest.fixture
def make_window(qtbot, args, models, tmp_path):
    """Opens windows on the tiny models; closes them at the end of the test.

    The fixture keeps each window referenced until it is closed: a window
    garbage-collected while its worker runs would take the running thread with it.
    """
    windows = []

    def make(source, *, builder=None, paused=False, **kwargs) -> MainWindow:
        loader = ModelLoader(builder=builder or (lambda _args, progress: models))
        window = MainWindow(args, source, output_dir=tmp_path / "out", loader=loader, model_choices=[], **kwargs)
        if paused:
            # Before the models arrive (they come through the event loop), so the source opens paused.
            window.set_paused(True)
        windows.append(window)
        window.resize(1000, 600)
        window.show()
        return window

    yield make
    for window in windows:
        window.close()


def wait_for_worker(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.worker is not None and window.worker.isRunning(), timeout=WAIT_MS)


def step_frames(qtbot, window, count: int) -> None:
    for _ in range(count):
        target = window.frames_shown + 1
        window.step()
        qtbot.waitUntil(lambda: window.frames_shown >= target, timeout=WAIT_MS)


def python_threads_started_since(before: set[threading.Thread]) -> list[str]:
    """Names of threads started since `before`, leaving out QThreads (Python lists
    them as "Dummy-N" forever once they ran Python code; Qt reports on those)."""
    return sorted(thread.name for thread in set(threading.enumerate()) - before
                  if thread.is_alive() and not thread.name.startswith("Dummy-"))


def changed_pixels(frame) -> int:
    """Pixels where the drawn frame differs from the camera frame."""
    return int(np.any(frame.buffer != frame.result.frame.image, axis=2).sum())


def test_frames_arrive_and_are_drawn(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    qtbot.waitUntil(lambda: window.frames_shown >= 2, timeout=WAIT_MS)
    frame = window.last_frame
    assert window.view.image.size() == QSize(1280, 720)
    assert len(frame.shown) == 3
    assert len(set(frame.shown.track_ids.tolist())) == 3
    # Skeletons and labels were drawn on a copy; the pipeline's frame is untouched.
    assert changed_pixels(frame) > 500
    assert set(frame.timings_ms) == {"capture", "detection", "pose", "tracking", "drawing"}
    assert frame.timings_ms["pose"] > 0 and frame.timings_ms["drawing"] > 0
    status = window.status_label.text()
    for part in ("fps", "capture", "detection", "pose", "tracking", "drawing", "people 3", "dropped 0", "cpu"):
        assert part in status
    qtbot.waitUntil(lambda: window.view.frames_painted > 0, timeout=WAIT_MS)
    # The whole clip plays, every frame in order, and the worker ends with it.
    qtbot.waitUntil(lambda: window.frames_shown == VIDEO_FRAMES and window.worker is None, timeout=WAIT_MS)
    assert [result.frame.index for result in window.pose_history] == list(range(VIDEO_FRAMES))
    assert all(len(result.poses) == 3 for result in window.pose_history)
    assert "end of video" in window.status_label.text()
    assert window.error_text == ""


def test_pause_step_and_resume(qtbot, make_window, video, tmp_path):
    window = make_window(video, paused=True)
    wait_for_worker(qtbot, window)
    assert window.controls.step_button.isEnabled()
    qtbot.wait(300)
    assert window.frames_shown == 0
    step_frames(qtbot, window, 2)
    qtbot.wait(300)
    assert window.frames_shown == 2
    assert [result.frame.index for result in window.pose_history] == [0, 1]
    window.set_paused(False)
    qtbot.waitUntil(lambda: window.frames_shown == VIDEO_FRAMES, timeout=WAIT_MS)
    assert [result.frame.index for result in window.pose_history] == list(range(VIDEO_FRAMES))


def test_keyboard_shortcuts_pause_and_quit(qtbot, make_window, video, tmp_path):
    window = make_window(video, paused=True)
    wait_for_worker(qtbot, window)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.controls.pause_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.controls.pause_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_S)
    assert list((tmp_path / "out").glob("snapshot_*.png"))
    qtbot.keyClick(window, Qt.Key.Key_Q)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)


def test_record_snapshot_and_export(qtbot, make_window, video, tmp_path):
    window = make_window(video, paused=True)
    wait_for_worker(qtbot, window)
    window.set_recording(True)
    assert window.controls.record_button.isChecked()
    step_frames(qtbot, window, 3)
    with qtbot.waitSignal(window.worker.recording_changed, timeout=WAIT_MS) as stopped:
        window.set_recording(False)
    recording = Path(stopped.args[1])
    assert stopped.args[0] is False and recording.suffix == ".mp4"
    assert recording.is_file() and not list(recording.parent.glob("*.part.*"))
    capture = cv2.VideoCapture(str(recording))
    frames = 0
    while capture.read()[0]:
        frames += 1
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    assert frames == 3 and size == (1280, 720)
    assert not window.controls.record_button.isChecked()

    snapshot = window.save_snapshot()
    image = QImage(str(snapshot))
    assert image.size() == QSize(1280, 720)
    # The snapshot is the annotated frame, not the camera frame.
    saved = cv2.imread(str(snapshot))
    assert np.array_equal(saved, window.last_frame.buffer)

    export = window.export_poses()
    document = json.loads(export.read_text())
    # The documented `hrtrack.poses` format of `track` (docs/output_format.md).
    assert document["format"] == "hrtrack.poses" and document["complete"] is True
    assert (document["width"], document["height"]) == (1280, 720)
    assert [frame["frame_index"] for frame in document["frames"]] == [0, 1, 2]
    person = document["frames"][0]["people"][0]
    assert len(person["keypoints"]) == 17 and len(person["keypoints"][0]) == 3
    assert person["track_id"] >= 1 and len(person["box"]) == 4
    assert len(document["keypoint_names"]) == 17


def test_live_thresholds_and_tracker_options(qtbot, make_window, video, tmp_path):
    from tracker import PoseTracker

    built = []

    def tracker_factory(**options):
        built.append(options)
        return PoseTracker(**options)

    window = make_window(video, paused=True, tracker_factory=tracker_factory,
                         settings=ViewSettings(keypoint_threshold=0.0))
    wait_for_worker(qtbot, window)
    step_frames(qtbot, window, 1)
    assert len(window.last_frame.shown) == 3
    everything_drawn = changed_pixels(window.last_frame)

    # Raising the detection threshold above the 0.9 person hides the others.
    window.controls.detection_threshold.setValue(0.92)
    window.controls.keypoint_threshold.setValue(1.0)
    step_frames(qtbot, window, 1)
    assert window.last_frame.shown.box_scores.tolist() == pytest.approx([0.95])
    assert changed_pixels(window.last_frame) < everything_drawn / 2

    # While paused, a display change redraws the frame on screen (not a new frame).
    shown_before, index_before = window.frames_shown, window.last_frame.index
    keypoints_hidden = changed_pixels(window.last_frame)
    window.controls.keypoint_threshold.setValue(0.0)
    qtbot.waitUntil(lambda: window.last_frame.redraw, timeout=WAIT_MS)
    assert window.frames_shown == shown_before and window.last_frame.index == index_before
    assert changed_pixels(window.last_frame) > keypoints_hidden

    # A tracker option change builds a new tracker with it.
    assert len(built) == 1
    window.controls._tracker_widgets["max_age"].setValue(5)
    step_frames(qtbot, window, 1)
    assert len(built) == 2 and built[-1]["max_age"] == 5


def test_model_loads_in_background_while_the_old_one_runs(qtbot, make_window, models, long_video, tmp_path):
    from detector.file_detector import FileDetector

    source, detections = long_video
    detector = FileDetector(detections)
    old_estimator = CountingEstimator(models.estimator)
    new_estimator = CountingEstimator(models.estimator)
    release = threading.Event()
    calls = []

    def builder(_args, progress):
        calls.append(_args)
        if len(calls) == 1:
            return Models(detector, old_estimator, "cpu", "old")
        progress(30, "loading weights")
        assert release.wait(WAIT_MS / 1000)
        return Models(detector, new_estimator, "cpu", "counting")

    window = make_window(source, paused=True, builder=builder)
    wait_for_worker(qtbot, window)
    window.request_model("", "hrnet_w32_coco_256x192")
    assert calls[-1].pose_config == "coco/w32_256x192"
    qtbot.waitUntil(lambda: window.load_progress.value() == 30, timeout=WAIT_MS)
    assert window.load_progress.isVisible()
    assert window.controls.model_progress.value() == 30
    # The old model keeps the video going while the new one loads.
    step_frames(qtbot, window, 1)
    assert len(window.last_frame.shown) == 3
    assert old_estimator.calls >= 1 and new_estimator.calls == 0
    release.set()
    qtbot.waitUntil(lambda: window.models.label == "counting", timeout=WAIT_MS)
    assert not window.load_progress.isVisible()
    window.set_paused(False)
    qtbot.waitUntil(lambda: new_estimator.calls >= 1, timeout=WAIT_MS)
    assert window.error_text == ""


def test_missing_weights_show_an_error(qtbot, make_window, video, tmp_path):
    def builder(_args, progress):
        raise FileNotFoundError("weights file not found: /nowhere/pose_hrnet_w32.pth")

    window = make_window(video, builder=builder)
    qtbot.waitUntil(lambda: "pose_hrnet_w32.pth" in window.error_text, timeout=WAIT_MS)
    assert window.isVisible() and window.worker is None


def test_closing_stops_the_threads_within_a_second(qtbot, make_window, video, tmp_path):
    before = set(threading.enumerate())
    window = make_window(video, paused=True)
    wait_for_worker(qtbot, window)
    step_frames(qtbot, window, 1)
    worker = window.worker
    assert any(thread.name.startswith("stage-") for thread in threading.enumerate())
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 1.0
    assert worker.isFinished()
    # A pipeline stage inside a model call ends when the call returns (a few
    # tiny-model calls at most); nothing may be left running after that.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and python_threads_started_since(before):
        time.sleep(0.05)
    assert python_threads_started_since(before) == []


def test_missing_file_shows_the_error_and_the_app_stays_usable(qtbot, make_window, video, tmp_path):
    missing = str(tmp_path / "no_such_video.mp4")
    window = make_window(missing)
    qtbot.waitUntil(lambda: "no_such_video.mp4" in window.error_text, timeout=WAIT_MS)
    assert window.worker is None and window.isVisible()
    window.open_source(video)
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=WAIT_MS)
    assert window.error_text == ""


def test_unreadable_file_shows_the_error(qtbot, make_window, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    window = make_window(str(broken))
    qtbot.waitUntil(lambda: "broken.mp4" in window.error_text, timeout=WAIT_MS)
    assert window.isVisible()


def test_gpu_out_of_memory_is_explained(qtbot, make_window, video, tmp_path):
    class OutOfMemoryPipeline:
        def __init__(self, *_):
            pass

        def run(self):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            yield  # a generator, like the real pipeline

        def stop(self):
            pass

    window = make_window(video, pipeline_factory=OutOfMemoryPipeline)
    qtbot.waitUntil(lambda: "out of memory" in window.error_text, timeout=WAIT_MS)
    assert "smaller model" in window.error_text or "--device cpu" in window.error_text
    assert window.isVisible()


def test_video_keeps_its_aspect_ratio_when_the_window_is_resized(qtbot, make_window, video, tmp_path):
    window = make_window(video, paused=True)
    wait_for_worker(qtbot, window)
    step_frames(qtbot, window, 1)
    for width, height in ((1200, 500), (700, 900)):
        window.resize(width, height)
        qtbot.wait(50)
        rect = window.view.video_rect()
        assert rect.width() / rect.height() == pytest.approx(1280 / 720, rel=0.01)
        assert window.view.rect().contains(rect)
    assert fit_rect(QSize(1280, 720), QRect(0, 0, 400, 400)) == QRect(0, 87, 400, 225)


def test_cli_renders_frames_and_saves_a_screenshot(hrnet_reference_dir, det_file, video, tmp_path, qapp):
    import main

    screenshot = tmp_path / "gui.png"
    status = main.main([
        "gui", "--source", video,
        "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
        "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
        "--det-file", str(det_file), "--device", "cpu", "--no-flip",
        "--output-dir", str(tmp_path / "out"),
        "--screenshot", str(screenshot), "--exit-after-frames", "2",
    ])
    assert status == 0
    image = cv2.imread(str(screenshot))
    assert image is not None and image.shape[1] >= 800
    # Not a blank window: the video occupies a good part of the picture.
    assert image.std() > 20


def test_cli_exits_nonzero_when_the_source_is_missing(hrnet_reference_dir, det_file, tmp_path, qapp):
    import main

    status = main.main([
        "gui", "--source", str(tmp_path / "missing.mp4"),
        "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
        "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
        "--det-file", str(det_file), "--device", "cpu",
        "--output-dir", str(tmp_path / "out"), "--exit-after-frames", "1",
    ])
    assert status == 1
