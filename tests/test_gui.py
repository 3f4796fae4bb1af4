"""The desktop app, offscreen: frames arrive and are drawn, controls work, closing stops everything.

The window runs the real pipeline (capture, detection, pose, tracking, drawing)
on the 5-frame PoseTrack clip with the tiny seeded HRNet of
tests/data/hrnet_reference and boxes read from a detection file (no network).
"""

from __future__ import annotations

import argparse
import html
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPoint, QRect, QSize, Qt  # noqa: E402
from PyQt6.QtGui import QImage  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.model_loader import ModelLoader, LoadedModels  # noqa: E402
from app.preferences import Preferences  # noqa: E402
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
def models(args) -> LoadedModels:
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
        kwargs.setdefault("preferences", Preferences(tmp_path / "gui.conf"))
        # Every frame, as fast as the models go, unless a test is about the pace.
        kwargs.setdefault("playback_speed", None)
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
    # A closed window lives on until its threads have ended (destroying a running QThread aborts).
    for window in windows:
        qtbot.waitUntil(lambda: window.is_shut_down, timeout=WAIT_MS)


def wait_for_worker(qtbot, window) -> None:
    """Until the source runs and its first frame is on screen (shown even when opened paused)."""
    qtbot.waitUntil(lambda: window.worker is not None and window.worker.isRunning(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=WAIT_MS)


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
    assert set(frame.timings_ms) == {"capture", "detection", "pose", "tracking", "drawing", "latency"}
    assert frame.timings_ms["pose"] > 0 and frame.timings_ms["drawing"] > 0
    status = window.status_label.text()
    for part in ("fps", "capture", "detection", "pose", "tracking", "drawing", "end to end", "people 3", "dropped 0",
                 "cpu"):
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
    # Paused or not, the source's first frame is shown, then nothing more.
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    assert window.controls.step_button.isEnabled()
    qtbot.wait(300)
    assert window.frames_shown == 1
    step_frames(qtbot, window, 1)
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
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
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
    assert [frame["frame_index"] for frame in document["frames"]] == [0, 1, 2, 3]
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
            return LoadedModels(detector, old_estimator, "cpu", "old")
        progress(30, "loading weights")
        assert release.wait(WAIT_MS / 1000)
        return LoadedModels(detector, new_estimator, "cpu", "counting")

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


def test_closing_hides_at_once_and_stops_every_thread(qtbot, make_window, video, tmp_path):
    before = set(threading.enumerate())
    window = make_window(video, paused=True)
    wait_for_worker(qtbot, window)
    step_frames(qtbot, window, 1)
    finished = []
    window.worker.finished.connect(lambda: finished.append(True))
    assert any(thread.name.startswith("stage-") for thread in threading.enumerate())
    window.close()
    # The window goes at once; the threads end by themselves (a stage inside a
    # model call when that call returns), and only then is the window shut down.
    assert not window.isVisible()
    qtbot.waitUntil(lambda: window.is_shut_down, timeout=WAIT_MS)
    assert finished and window.worker is None
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and python_threads_started_since(before):
        time.sleep(0.05)
    assert python_threads_started_since(before) == []


CLOSE_SCRIPT = Path(__file__).with_name("gui_close_app.py")


def closed_local_url() -> str:
    """An http URL on a local port where nothing listens (connections are refused at once)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/stream"


@pytest.mark.slow  # a GUI subprocess per case, 5-15 CPU-seconds each
@pytest.mark.parametrize("how", ["q", "button", "paused", "sigint", "sigint2", "sigterm", "sighup", "sigterm2",
                                 "destroy"])
def test_closing_during_a_model_call_exits_cleanly(how, hrnet_reference_dir, det_file, video, tmp_path):
    """`main.py gui` closed while the pose model is inside a 3 s call,
    by the window, Ctrl-C, `kill`, a closed terminal or the window system destroying the window:
    exit status 0, no abort, a running recording finished under its name, and the process ends soon
    after the call; a second signal exits at once with 128 + its number (see tests/gui_close_app.py)."""
    import os
    import signal
    import subprocess
    import sys

    source = video
    output_dir = tmp_path / "out"
    command = [sys.executable, str(CLOSE_SCRIPT), how, source, "--",
               "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
               "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
               "--det-file", str(det_file), "--device", "cpu", "--no-flip", "--output-dir", str(output_dir)]
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    output = done.stdout + done.stderr
    assert "Destroyed while thread" not in output and "terminate called" not in output
    if how in ("sigint2", "sigterm2"):
        # A second signal exits at once and cleanly, without waiting for the call.
        signum = signal.SIGINT if how == "sigint2" else signal.SIGTERM
        assert done.returncode == 128 + signum, output
        assert f"second {'Ctrl-C' if how == 'sigint2' else 'SIGTERM'}" in done.stderr
        assert "call finished" not in done.stdout
        return
    assert done.returncode == 0, output
    times = {line.split(" at ")[0]: float(line.rsplit(" at ", 1)[1])
             for line in done.stdout.splitlines() if " at " in line}
    assert "closed hidden=True" in times, output
    # The call in flight was let finish, and no new one started after the close.
    calls = [float(line.rsplit(" at ", 1)[1]) for line in done.stdout.splitlines() if "call finished" in line]
    assert len([at for at in calls if at >= times["closed hidden=True"]]) == 1, output
    assert times["call finished"] >= times["closed hidden=True"]
    assert times["exiting"] - times["call finished"] < 10.0, output
    if how in ("sigterm", "sighup"):
        # The recording was finished and renamed: a playable file, no `.part` left.
        recordings = list(output_dir.glob("recording_*"))
        assert len(recordings) == 1 and recordings[0].suffix == ".mp4" and ".part" not in recordings[0].name, output
        capture = cv2.VideoCapture(str(recordings[0]))
        assert capture.read()[0]
        capture.release()


def test_a_refused_stream_fails_at_once_and_names_itself(qtbot, make_window, video):
    url = closed_local_url()
    window = make_window(None)
    qtbot.waitUntil(lambda: window.models is not None, timeout=WAIT_MS)
    started = time.monotonic()
    window.controls.source_requested.emit(url)
    qtbot.waitUntil(lambda: "cannot connect" in window.error_text, timeout=WAIT_MS)
    # Refused at once: no retrying "Opening…" for seconds.
    assert time.monotonic() - started < 3.0
    assert url in window.error_text and window.controls.url.text() == url and url in window.windowTitle()
    assert not window.controls.pause_button.isEnabled() and window.view.image is None
    window.open_source(video)
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=WAIT_MS)
    assert window.error_text == ""


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
            import torch

            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
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


@pytest.fixture
def gui_environment(monkeypatch, tmp_path):
    """What `main.py gui` run in this process may set or read, restored afterwards: its thread
    count (OMP_NUM_THREADS) and its remembered settings (a private config folder)."""
    import os

    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_cli_renders_frames_and_saves_a_screenshot(hrnet_reference_dir, det_file, video, tmp_path, qapp,
                                                   gui_environment):
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


def test_cli_exits_nonzero_when_the_source_is_missing(hrnet_reference_dir, det_file, tmp_path, qapp,
                                                       gui_environment):
    import main

    status = main.main([
        "gui", "--source", str(tmp_path / "missing.mp4"),
        "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
        "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
        "--det-file", str(det_file), "--device", "cpu",
        "--output-dir", str(tmp_path / "out"), "--exit-after-frames", "1",
    ])
    assert status == 1


# ---- layout: long messages, controls, shortcuts ---------------------------------------

LONG_ERROR = ("Could not load the model: pose weights hrnet_w48_coco_384x288 are offline and not cached; download "
              "https://github.com/example-org/hrnet-mirror/releases/download/v1.0/" + "pose_hrnet_w48_384x288" * 6
              + ".pth and put it at /home/someone/.cache/hrtrack/weights/" + "a_rather_long_folder_name" * 6
              + "/pose_hrnet_w48_384x288.pth")


def panel_geometry(window) -> tuple[int, int, int]:
    return window.width(), window.panel.width(), window.controls.width()


def test_a_long_error_never_widens_the_panel(qtbot, make_window, models):
    assert len(LONG_ERROR) >= 500
    calls = []

    def builder(_args, progress):
        calls.append(_args)
        if len(calls) > 1:
            raise FileNotFoundError(LONG_ERROR)
        return models

    window = make_window(None, builder=builder)
    qtbot.waitUntil(lambda: window.models is not None, timeout=WAIT_MS)
    qtbot.wait(100)
    before = panel_geometry(window)
    window.request_model("", "hrnet_w48_coco_384x288")
    qtbot.waitUntil(lambda: "rather_long_folder_name" in window.error_text, timeout=WAIT_MS)
    # The banner and the panel say it in short, cut between words; the whole text is under Details.
    status = window.controls.model_status.text()
    assert status.startswith("Model weights or config not found") and status.endswith("download …")
    assert window.error_banner.text().startswith(status.removesuffix(".")[:60])
    assert not window.error_details.isVisible()
    window.details_button.click()
    assert window.error_details.isVisible() and "rather_long_folder_name" in window.error_details.text()
    for dismissed in (False, True):
        if dismissed:
            window.clear_error()
        for tab in range(window.controls.tabs.count()):
            window.controls.tabs.setCurrentIndex(tab)
            qtbot.wait(50)
            assert panel_geometry(window) == before, (tab, dismissed)
            # Every control fits in the panel's visible width (nothing clipped on the right).
            assert window.controls.width() <= window.panel.viewport().width()
            assert window.controls.minimumSizeHint().width() <= window.panel.viewport().width()


def test_pause_is_disabled_until_a_source_is_open(qtbot, make_window, video):
    window = make_window(None)
    qtbot.waitUntil(lambda: window.models is not None, timeout=WAIT_MS)
    controls = window.controls
    assert not controls.pause_button.isEnabled()
    assert not controls.step_button.isEnabled() and not controls.step_back_button.isEnabled()
    assert not window.timeline.slider.isEnabled()
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not controls.pause_button.isChecked()
    window.open_source(video)
    assert controls.pause_button.isEnabled() and window.timeline.slider.isEnabled()


def test_typing_in_the_url_field_fires_no_shortcut(qtbot, make_window, video, tmp_path):
    window = make_window(video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    window.activateWindow()
    field = window.controls.url
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=WAIT_MS)
    typed = "rtsp://cam era/serie"
    qtbot.keyClicks(field, typed)
    qtbot.keyClick(field, Qt.Key.Key_Right)
    qtbot.keyClick(field, Qt.Key.Key_Q)
    assert field.text() == typed + "q"
    assert window.isVisible()
    assert not window.controls.record_button.isChecked()
    assert not list((tmp_path / "out").glob("snapshot_*"))
    assert window.controls.pause_button.isChecked()
    qtbot.wait(200)
    assert window.frames_shown == 1
    # Outside a text field the same keys are shortcuts again.
    window.view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_S)
    assert list((tmp_path / "out").glob("snapshot_*.png"))


def test_the_loading_bar_is_wide_enough_for_its_text(qtbot, make_window):
    release = threading.Event()

    def builder(_args, progress):
        progress(100, "ready")
        assert release.wait(WAIT_MS / 1000)
        raise FileNotFoundError("no weights")

    window = make_window(None, builder=builder)
    qtbot.waitUntil(lambda: window.load_progress.value() == 100, timeout=WAIT_MS)
    bar = window.load_progress
    text = bar.text()
    assert text == "loading model 100%"
    assert bar.width() >= bar.fontMetrics().horizontalAdvance(text) + 10
    release.set()


def test_tracker_panel_offers_the_live_options_of_tracker_options(qtbot, make_window):
    from tracker import OPTION_INFO

    window = make_window(None)
    widgets = window.controls._tracker_widgets
    live = [name for name, info in OPTION_INFO.items() if info.live]
    assert live and list(widgets) == live
    for name in live:
        # Rich text, so Qt wraps it instead of one line as wide as the help.
        assert widgets[name].toolTip().startswith("<qt>" + html.escape(OPTION_INFO[name].help))
    choices = window.controls._tracker_widgets["motion"]
    assert [choices.itemData(i) for i in range(choices.count())] == list(OPTION_INFO["motion"].choices)
    # Words for people, the option's value for the tracker.
    assert "constant velocity" in [choices.itemText(i) for i in range(choices.count())]
    choices.setCurrentIndex(choices.findText("none"))
    assert window.controls.tracker_options()["motion"] == "none"
    assert window.settings.tracker_options["motion"] == "none"


# ---- sources: opening while paused, failures, timeline, detector choice ---------------

def test_opening_a_file_while_paused_shows_its_first_frame(qtbot, make_window, video, long_video):
    window = make_window(video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    step_frames(qtbot, window, 2)
    assert window.view.image.size() == QSize(1280, 720)
    other, _ = long_video
    window.controls.source_requested.emit(other)
    # The old frame and its IDs leave the screen at once...
    assert window.view.image is None and window.last_frame is None
    # ... the new source's first frame comes, and a newly opened file plays.
    qtbot.waitUntil(lambda: window.last_frame is not None, timeout=WAIT_MS)
    assert window.view.image.size() == QSize(640, 360) and window.last_frame.index == 0
    assert not window.controls.pause_button.isChecked()
    qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=WAIT_MS)
    assert "opening" not in window.status_label.text()
    assert window.windowTitle().startswith("long.mp4")


def test_a_failed_source_keeps_saying_so_in_the_status_line(qtbot, make_window, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    window = make_window(str(broken))
    qtbot.waitUntil(lambda: "broken.mp4" in window.error_text, timeout=WAIT_MS)
    # The status bar's temporary copy of the message expires; the status line stays.
    window.statusBar().clearMessage()
    status = window.status_label.text()
    assert "broken.mp4" in status and "opening" not in status


def test_timeline_seeks_and_steps_back(qtbot, make_window, models, long_video):
    from PyQt6.QtWidgets import QSlider

    from detector.file_detector import FileDetector

    source, detections = long_video
    detector = FileDetector(detections)
    window = make_window(source, paused=True,
                         builder=lambda _args, progress: LoadedModels(detector, models.estimator, "cpu", "tiny"))
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    timeline = window.timeline.slider
    assert timeline.isEnabled() and timeline.maximum() == 39
    # Frame numbers count from 1, with the time at the file's 30 fps.
    assert window.timeline.label.text() == "0:00.0 / 0:01.3 · frame 1 / 40"
    timeline.triggerAction(QSlider.SliderAction.SliderToMaximum)
    qtbot.waitUntil(lambda: window.last_frame is not None and window.last_frame.index == 39, timeout=WAIT_MS)
    assert window.timeline.label.text() == "0:01.3 / 0:01.3 · frame 40 / 40" and timeline.value() == 39
    # Nothing to step forward to on the last frame.
    assert not window.controls.step_button.isEnabled()
    assert len(window.last_frame.shown) == 3
    window.step_back()
    qtbot.waitUntil(lambda: window.last_frame.index == 38, timeout=WAIT_MS)
    assert window.controls.pause_button.isChecked() and window.controls.step_back_button.isEnabled()
    # The frame shown is the file's frame 38 (the seek is exact).
    capture = cv2.VideoCapture(source)
    capture.set(cv2.CAP_PROP_POS_FRAMES, 38)
    ok, expected = capture.read()
    capture.release()
    assert ok and np.array_equal(window.last_frame.result.frame.image, expected)
    # The Left key steps back too.
    window.activateWindow()
    window.view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.last_frame.index == 37, timeout=WAIT_MS)
    assert window.error_text == ""


def test_the_detector_is_chosen_in_the_window(qtbot, make_window, models, det_file):
    calls = []

    def builder(_args, progress):
        calls.append(_args)
        return models

    window = make_window(None, builder=builder)
    qtbot.waitUntil(lambda: window.models is not None, timeout=WAIT_MS)
    combo = window.controls.detector
    items = [combo.itemText(i) for i in range(combo.count())]
    assert combo.currentText() == f"file: {det_file}"
    assert "auto" in items and "fasterrcnn_mobilenet_v3_large_fpn" in items
    combo.setCurrentText("fasterrcnn_mobilenet_v3_large_fpn")
    window.controls.load_model_button.click()
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=WAIT_MS)
    assert calls[-1].detector == "fasterrcnn_mobilenet_v3_large_fpn" and calls[-1].det_file is None
    # The pose model stays what it was.
    assert calls[-1].pose_weights == calls[0].pose_weights


# ---- thread safety --------------------------------------------------------------------

def test_frame_images_own_their_pixels():
    import gc

    from app.video_view import image_from_bgr

    array = np.zeros((4, 6, 3), np.uint8)
    array[..., 2] = 200  # red in BGR
    image = image_from_bgr(array)
    array[:] = 0
    assert image.pixelColor(1, 1).red() == 200
    # A strided view (a contiguous temporary is made): the image outlives both.
    wide = np.zeros((64, 128, 3), np.uint8)
    wide[..., 1] = 123
    image = image_from_bgr(wide[:, ::2])
    del wide
    gc.collect()
    clutter = [np.full((64, 64, 3), 7, np.uint8) for _ in range(50)]
    assert image.size() == QSize(64, 64)
    assert {image.pixelColor(x, y).green() for x in (0, 31, 63) for y in (0, 40, 63)} == {123}
    del clutter


class ThresholdRecordingDetector:
    """A file detector whose `score_threshold` writes are recorded with the writing thread's name."""

    def __init__(self, detector) -> None:
        self._detector = detector
        self._threshold = detector.score_threshold
        self.in_call = False
        self.writes: list[tuple[str, bool, float]] = []

    @property
    def score_threshold(self) -> float:
        return self._threshold

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        self.writes.append((threading.current_thread().name, self.in_call, value))
        self._threshold = value

    def __call__(self, frames):
        self.in_call = True
        try:
            time.sleep(0.01)
            return self._detector(frames)
        finally:
            self.in_call = False


def test_the_detection_threshold_is_applied_by_the_detection_thread_between_calls(qtbot, make_window, models,
                                                                                   long_video):
    from detector.file_detector import FileDetector

    source, detections = long_video
    detector = ThresholdRecordingDetector(FileDetector(detections))
    window = make_window(source, builder=lambda _args, progress: LoadedModels(detector, models.estimator, "cpu", "tiny"))
    qtbot.waitUntil(lambda: window.frames_shown >= 2, timeout=WAIT_MS)
    for value in (0.6, 0.7, 0.92):
        window.controls.detection_threshold.setValue(value)
        qtbot.wait(30)
    qtbot.waitUntil(lambda: detector.score_threshold == pytest.approx(0.92), timeout=WAIT_MS)
    assert detector.writes
    assert {name for name, _, _ in detector.writes} == {"stage-detection"}
    assert not any(during_call for _, during_call, _ in detector.writes)


def test_errors_are_recognised_by_their_types():
    from app.errors import explain_load_error, explain_run_error
    from detector import DetectorWeightsError
    from pipeline.capture import SourceError
    from pipeline.pipeline import PipelineError

    # The capture stage's error arrives wrapped; its own message names the source.
    wrapped = PipelineError("capture", SourceError("clip.mp4: no frame could be decoded"))
    assert explain_run_error("clip.mp4", wrapped) == "clip.mp4: no frame could be decoded"
    assert explain_run_error("3", FileNotFoundError("no such camera")) == "Cannot read camera 3: no such camera"

    class SourceError(Exception):  # the same name, another type: not a source problem
        pass

    assert explain_run_error("clip.mp4", SourceError("boom")) == "Stopped on clip.mp4: boom"
    assert "another detector" in explain_load_error(DetectorWeightsError("offline and not cached"))


# ---- the platform plugin --------------------------------------------------------------

def test_gui_names_the_missing_system_packages_when_qt_cannot_start(hrnet_reference_dir, det_file, video, tmp_path):
    """Qt's xcb plugin without a display (or without its libraries) aborts the process;
    `main.py gui` checks first and says what to install, exiting with status 1."""
    import os
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment["QT_QPA_PLATFORM"] = "xcb"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "main.py"), "gui", "--source", video,
         "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
         "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
         "--det-file", str(det_file), "--device", "cpu", "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "libxcb-cursor0" in done.stderr and "apt-get install" in done.stderr
    assert "platform plugin" in done.stderr
    assert not list(tmp_path.glob("core*"))


def test_the_model_panel_loads_the_chosen_backend(qtbot, make_window, models):
    from pose.backends import BACKENDS

    requested = []

    def builder(args, progress):
        requested.append(args.backend)
        return models

    window = make_window(None, builder=builder)
    qtbot.waitUntil(lambda: len(requested) == 1, timeout=WAIT_MS)
    choices = window.controls.model_backend
    assert [choices.itemText(i) for i in range(choices.count())] == list(BACKENDS)
    assert choices.currentText() == requested[0]
    choices.setCurrentText("bf16")
    window.controls._request_model()
    qtbot.waitUntil(lambda: len(requested) == 2, timeout=WAIT_MS)
    assert requested[1] == "bf16"


def xcb_event(kind: int, window_id: int) -> bytes:
    """A 32-byte xcb event of type `kind` about X11 window `window_id` (a DestroyNotify's layout)."""
    import sys

    event = bytearray(32)
    event[0] = kind
    event[4:8] = event[8:12] = window_id.to_bytes(4, sys.byteorder)
    return bytes(event)


def test_the_window_closes_when_the_window_system_destroys_it(qtbot, make_window):
    from PyQt6 import sip
    from PyQt6.QtCore import QAbstractEventDispatcher, QByteArray
    from PyQt6.QtWidgets import QApplication

    from app.process_exit import DestroyedWindowWatch

    window = make_window(None)
    watch = DestroyedWindowWatch(window)
    QApplication.instance().installNativeEventFilter(watch)
    own = int(window.winId())
    try:
        dispatcher = QAbstractEventDispatcher.instance()
        # Another window destroyed, or another event about this one: nothing happens.
        for event in (xcb_event(17, own + 1), xcb_event(18, own)):  # 18: UnmapNotify (minimised)
            dispatcher.filterNativeEvent(QByteArray(b"xcb_generic_event_t"), sip.voidptr(event))
        qtbot.wait(100)
        assert window.isVisible()
        event = xcb_event(17, own)
        dispatcher.filterNativeEvent(QByteArray(b"xcb_generic_event_t"), sip.voidptr(event))
        qtbot.waitUntil(lambda: window.is_shut_down, timeout=WAIT_MS)
    finally:
        QApplication.instance().removeNativeEventFilter(watch)


def test_shortcuts_work_after_a_combo_box_choice_and_a_typed_value(qtbot, make_window, video, tmp_path):
    window = make_window(video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    window.activateWindow()
    controls = window.controls
    # A choice in a combo box (the backend list): the next Space pauses/plays, not the list.
    backend = controls.model_backend
    backend.setFocus()
    qtbot.waitUntil(backend.hasFocus, timeout=WAIT_MS)
    backend.activated.emit(0)
    qtbot.waitUntil(window.view.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert not controls.pause_button.isChecked()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert controls.pause_button.isChecked()
    # A typed threshold, Return: the value is kept and Space pauses instead of typing.
    field = controls.detection_threshold
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=WAIT_MS)
    field.selectAll()
    qtbot.keyClicks(field, "0.7")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert field.value() == pytest.approx(0.7)
    qtbot.waitUntil(window.view.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert not controls.pause_button.isChecked() and field.value() == pytest.approx(0.7)
    # Escape leaves a field without Return.
    controls.url.setFocus()
    qtbot.waitUntil(controls.url.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(controls.url, Qt.Key.Key_Escape)
    qtbot.waitUntil(window.view.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_S)
    assert list((tmp_path / "out").glob("snapshot_*.png"))


def test_the_wheel_changes_only_the_focused_box(qtbot, make_window):
    from PyQt6.QtCore import QPoint, QPointF
    from PyQt6.QtGui import QWheelEvent

    window = make_window(None)
    controls = window.controls
    threshold = controls.detection_threshold
    backend = controls.model_backend
    before = (threshold.value(), backend.currentIndex())

    def wheel(widget) -> None:
        centre = QPointF(widget.rect().center())
        event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(widget, event)

    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus, timeout=WAIT_MS)
    wheel(threshold)
    wheel(backend)
    assert (threshold.value(), backend.currentIndex()) == before
    threshold.setFocus()
    qtbot.waitUntil(threshold.hasFocus, timeout=WAIT_MS)
    wheel(threshold)
    assert threshold.value() != before[0]


# ---- playback: pace, end of file, loop, latency, timeline -----------------------------------


def long_video_window(make_window, models, long_video, **kwargs) -> MainWindow:
    from detector.file_detector import FileDetector

    source, detections = long_video
    detector = FileDetector(detections)
    estimator = kwargs.pop("estimator", models.estimator)
    return make_window(source, builder=lambda _args, progress: LoadedModels(detector, estimator, "cpu", "tiny"),
                       **kwargs)


class SlowEstimator(CountingEstimator):
    """A real estimator that takes at least `sleep_s` per call (a big model on a small CPU)."""

    def __init__(self, estimator, sleep_s: float) -> None:
        super().__init__(estimator)
        self.sleep_s = sleep_s

    def estimate_many(self, images, boxes_per_image):
        time.sleep(self.sleep_s)
        return super().estimate_many(images, boxes_per_image)


def test_a_file_plays_at_its_speed_and_drops_frames_it_cannot_keep_up_with(qtbot, make_window, models, long_video):
    # 4x a 30 fps file is 120 frames/s, far more than 0.1 s per frame allows.
    window = long_video_window(make_window, models, long_video, paused=True, playback_speed=1.0,
                               estimator=SlowEstimator(models.estimator, 0.1))
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    assert window.worker.speed == 1.0
    window.timeline.speed.setCurrentIndex(window.timeline.speed.findText("4x"))
    assert window.worker.speed == 4.0
    window.set_paused(False)
    qtbot.waitUntil(lambda: window.worker is None, timeout=WAIT_MS)
    shown = [result.frame.index for result in window.pose_history]
    # Frames in order, with gaps where late frames were skipped, and the last frame shown.
    assert shown == sorted(set(shown)) and shown[-1] == 39 and len(shown) < 30
    assert window.pose_history[-1].dropped_frames == 40 - len(shown)
    assert f"dropped {40 - len(shown)}" in window.status_label.text()


def test_play_at_the_end_starts_again_and_loop_never_stops(qtbot, make_window, video):
    window = make_window(video)
    qtbot.waitUntil(lambda: window.frames_shown == VIDEO_FRAMES and window.worker is None, timeout=WAIT_MS)
    controls = window.controls
    # At the end: Play restarts, nothing to step to, the label counts from 1.
    assert controls.pause_button.text() == "Play" and not controls.step_button.isEnabled()
    assert window.timeline.label.text().endswith("frame 5 / 5")
    window.activateWindow()
    window.view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.last_frame.index == 0 or window.frames_shown > 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.frames_shown == VIDEO_FRAMES and window.worker is None, timeout=WAIT_MS)
    assert [result.frame.index for result in window.pose_history] == list(range(VIDEO_FRAMES))
    # With Loop on, the end is followed by the first frame again, playing.
    window.timeline.loop.setChecked(True)
    window.set_paused(False)
    shown = []
    window.frame_displayed.connect(lambda frame: shown.append(frame.index))
    qtbot.waitUntil(lambda: shown.count(0) >= 2, timeout=WAIT_MS)
    assert shown[:VIDEO_FRAMES + 1] == [*range(VIDEO_FRAMES), 0]
    assert not controls.pause_button.isChecked()


def test_latency_leaves_out_the_time_spent_paused(qtbot, make_window, models, long_video):
    window = long_video_window(make_window, models, long_video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    # Frames wait in the pipeline while paused.
    qtbot.wait(2500)
    assert "– fps" in window.status_label.text()
    window.set_paused(False)
    latencies = []
    window.frame_displayed.connect(lambda frame: latencies.append(frame.timings_ms["latency"]))
    qtbot.waitUntil(lambda: len(latencies) >= 3, timeout=WAIT_MS)
    assert max(latencies) < 1500, latencies


def test_the_timeline_jumps_where_clicked_and_its_label_follows_a_drag(qtbot, make_window, models, long_video):
    from PyQt6.QtCore import QPoint
    from PyQt6.QtTest import QTest

    window = long_video_window(make_window, models, long_video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    timeline = window.timeline
    # As wide as the video.
    assert timeline.width() == window.view.width() and timeline.slider.width() > window.view.width() // 2
    slider = timeline.slider
    slider.setSliderDown(True)
    slider.setSliderPosition(20)
    assert timeline.label.text().endswith("frame 21 / 40") and window.last_frame.index == 0
    slider.setSliderDown(False)
    qtbot.waitUntil(lambda: window.last_frame.index == 20, timeout=WAIT_MS)
    # A click three quarters along the groove goes there (not one page further).
    QTest.mouseClick(slider, Qt.MouseButton.LeftButton, pos=QPoint(slider.width() * 3 // 4, slider.height() // 2))
    qtbot.waitUntil(lambda: abs(window.last_frame.index - 29) <= 2, timeout=WAIT_MS)
    assert window.controls.pause_button.isChecked()


# ---- state that follows what runs -------------------------------------------------------


def test_a_failed_model_load_leaves_the_running_model_in_the_panel_and_a_good_one_clears_the_banner(
        qtbot, make_window, models, args):
    calls = []

    def builder(requested, progress):
        calls.append(requested)
        if str(requested.pose_weights).endswith("missing.pth"):
            raise FileNotFoundError(f"{requested.pose_weights} does not exist")
        return models

    window = make_window(None, builder=builder)
    qtbot.waitUntil(lambda: window.models is not None, timeout=WAIT_MS)
    controls = window.controls
    running = controls.model_weights.currentText()
    controls.model_weights.setCurrentText("/nowhere/missing.pth")
    controls.detector_weights.setText("/nowhere/detector.pth")
    controls.load_model_button.click()
    qtbot.waitUntil(lambda: "missing.pth" in window.error_text, timeout=WAIT_MS)
    # A sentence, then what still runs; the panel shows the running model again.
    assert window.error_banner.text().endswith("does not exist. Still running dev_tiny.")
    assert controls.model_weights.currentText() == running
    # The detector weights field is passed on as --det-weights would be (with a network detector).
    assert calls[-1].det_weights is None  # a detection file is in use: no network to give weights to
    controls.model_weights.setCurrentText(str(args.pose_weights))
    controls.load_model_button.click()
    qtbot.waitUntil(lambda: window.error_text == "", timeout=WAIT_MS)
    assert len(calls) == 3


def test_model_errors_give_the_hint_first_and_the_details_on_demand():
    from app.errors import explain_load_error, split_message
    from detector import DetectorWeightsError
    from pose.checkpoints import CheckpointError

    keys = "; ".join(f"stage4.{index}.fuse_layers.0.1.0.weight: file [32] vs model [48]" for index in range(20))
    error = CheckpointError(f"w48.pth: does not fit PoseHighResolution: {keys}. The file looks like HRNet-W32 with "
                            "17 keypoints; the model is HRNet-W48 with 17 keypoints: use the experiment config that "
                            "matches the file.")
    summary, details = split_message(explain_load_error(error))
    assert summary.startswith("The pose weights do not fit the config. The file looks like HRNet-W32")
    assert len(summary) < 250 and "fuse_layers" in details
    summary, details = split_message(explain_load_error(DetectorWeightsError(
        "Detector weights for 'ssdlite' are not available: offline.\nor pass a local state dict with --det-weights PATH.")))
    assert "Detector weights" in summary and "--det-weights" not in details and "Model tab" in details


def test_a_detection_threshold_under_the_trackers_minimum_says_so(qtbot, make_window):
    window = make_window(None)
    controls = window.controls
    controls.detection_threshold.setValue(0.6)
    assert not controls.score_hint.isVisibleTo(controls)
    controls.detection_threshold.setValue(0.3)
    assert controls.score_hint.isVisibleTo(controls) and "Min score (0.50" in controls.score_hint.text()
    controls._tracker_widgets["min_score"].setValue(0.2)
    assert not controls.score_hint.isVisibleTo(controls)


def test_a_stream_fails_fast_on_the_first_connection_and_retries_after_a_drop(monkeypatch):
    import app.sources as sources
    from app.sources import StoppableStreamOpener, StreamUnavailable

    answers = []

    class Capture:
        def __init__(self, url):
            self.opened = answers.pop(0)

        def isOpened(self):  # noqa: N802 (OpenCV naming)
            return self.opened

        def release(self):
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", Capture)
    opener = StoppableStreamOpener("rtsp://camera", threading.Event(), retry_s=0.001, budget_s=5.0)
    answers[:] = [False]
    with pytest.raises(StreamUnavailable, match="cannot connect"):
        opener()
    answers[:] = [True]
    assert opener().isOpened()
    # After a drop: refused twice (the server restarting), then back.
    answers[:] = [False, False, True]
    assert opener().isOpened() and answers == []


# ---- menus, remembered settings, drag and drop, track list ------------------------------


def test_the_menu_bar_offers_every_command_with_its_keys(qtbot, make_window):
    from PyQt6.QtGui import QKeySequence

    from app.actions import COMMANDS, shortcut_list_html

    window = make_window(None)
    menus = {action.text().replace("&", ""): action.menu() for action in window.menuBar().actions()}
    assert list(menus) == ["File", "Playback", "Output", "View", "Help"]
    in_menus = {action for menu in menus.values() for action in menu.actions()}
    for command in COMMANDS:
        action = window.actions_by_name[command.name]
        assert action in in_menus
        assert action.shortcuts() == [QKeySequence(key) for key in command.keys]
    listing = shortcut_list_html(window.actions_by_name)
    assert "Pause / play" in listing and "F11" in listing and "Ctrl+Q" in listing
    window.actions_by_name["shortcuts"].trigger()
    qtbot.waitUntil(lambda: window._dialog.isVisible(), timeout=WAIT_MS)
    assert "Step back" in window._dialog.text()
    window._dialog.close()
    from app.main_window import about_text
    assert "hrtrack 0.1.0" in about_text() or "source tree" in about_text()


def test_view_switches_follow_the_panel_and_change_the_drawing(qtbot, make_window, video):
    window = make_window(video, paused=True, settings=ViewSettings(keypoint_threshold=0.0))
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    actions = window.actions_by_name
    # Boxes and trails are on from the start, as in the README's picture.
    assert actions["boxes"].isChecked() and window.settings.show_boxes and window.settings.show_trails
    drawn = changed_pixels(window.last_frame)
    window.activateWindow()
    window.view.setFocus()
    for key in (Qt.Key.Key_K, Qt.Key.Key_B, Qt.Key.Key_I):  # skeletons, boxes, ID labels off
        qtbot.keyClick(window, key)
    assert not window.controls.show_switches["show_skeletons"].isChecked()
    assert not (window.settings.show_skeletons or window.settings.show_boxes or window.settings.show_labels)
    qtbot.waitUntil(lambda: window.last_frame.redraw and changed_pixels(window.last_frame) < drawn / 2,
                    timeout=WAIT_MS)
    window.controls.show_switches["show_boxes"].setChecked(True)
    assert actions["boxes"].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_P)
    assert not window.panel.isVisible() and not actions["panel"].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert window.isFullScreen()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert not window.isFullScreen()


def test_the_window_remembers_sources_output_folder_geometry_and_panel(qtbot, make_window, video, tmp_path):
    from PyQt6.QtCore import QMimeData, QPoint, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    preferences = Preferences(tmp_path / "remembered.conf")
    window = make_window(None, preferences=preferences)
    qtbot.waitUntil(lambda: window.models is not None, timeout=WAIT_MS)
    # A file dropped on the window plays.
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(video)])
    drop = QDropEvent(QPointF(QPoint(50, 50)), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    # (Qt routes a real drop to the widget that accepted the drag; here the handler is called as Qt would.)
    window.dropEvent(drop)
    assert drop.isAccepted()
    qtbot.waitUntil(lambda: window.frames_shown >= 1, timeout=WAIT_MS)
    assert window.source == video and preferences.recent_sources() == [video]
    window.set_output_dir(tmp_path / "chosen")
    window.set_panel_visible(False)
    qtbot.wait(50)  # the layout's new minimum (without the panel) applies from the event loop
    window.resize(780, 520)  # within the offscreen screen (800x600), which a restored window is kept in
    size = (window.width(), window.height())
    window.close()
    qtbot.waitUntil(lambda: window.is_shut_down, timeout=WAIT_MS)

    again = MainWindow(window._model_args, None, loader=ModelLoader(builder=lambda _args, progress: window.models),
                       model_choices=[], preferences=Preferences(tmp_path / "remembered.conf"))
    try:
        assert again.output_dir == tmp_path / "chosen"
        assert again.restore_geometry() and (again.width(), again.height()) == size != (again.sizeHint().width(), again.sizeHint().height())
        assert not again.actions_by_name["panel"].isChecked()
        again._fill_recent_menu()
        assert [action.text() for action in again.recent_menu.actions()][0] == video
    finally:
        again.close()
        qtbot.waitUntil(lambda: again.is_shut_down, timeout=WAIT_MS)


def test_the_track_list_shows_the_people_and_a_pick_highlights_one(qtbot, make_window, video):
    window = make_window(video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    tracks = window.controls.track_list
    window.actions_by_name["tracks"].trigger()
    assert window.controls.tabs.currentWidget() is tracks
    ids = sorted(int(track_id) for track_id in window.last_frame.shown.track_ids)
    assert [tracks.table.item(row, 0).text() for row in range(tracks.table.rowCount())] == [f"#{i}" for i in ids]
    tracks.table.selectRow(1)
    assert window.settings.highlight_track_id == ids[1]
    qtbot.waitUntil(lambda: window.last_frame.redraw, timeout=WAIT_MS)
    # A click on a person in the video picks that person; a second click clears.
    frame = window.last_frame
    first = int(np.flatnonzero(frame.shown.track_ids == ids[0])[0])
    x1, y1, x2, y2 = frame.shown.boxes[first]
    rect = window.view.video_rect()
    scale = rect.width() / frame.buffer.shape[1]
    point = QPoint(int(rect.left() + (x1 + x2) / 2 * scale), int(rect.top() + y1 * scale + 5))
    from PyQt6.QtTest import QTest

    QTest.mouseClick(window.view, Qt.MouseButton.LeftButton, pos=point)
    assert window.settings.highlight_track_id in ids and tracks.highlighted == window.settings.highlight_track_id
    QTest.mouseClick(window.view, Qt.MouseButton.LeftButton, pos=point)
    assert window.settings.highlight_track_id is None


def test_gui_takes_the_tracker_options_of_track():
    import argparse

    from cli import gui

    parser = argparse.ArgumentParser()
    gui.add_arguments(parser)
    args = parser.parse_args(["--track-max-age", "7", "--tracker-option", "lost_scale_growth=0.2", "--speed", "max"])
    from cli.options import tracker_options

    assert tracker_options(args) == {"max_age": 7, "lost_scale_growth": 0.2}
    assert args.speed is None and args.show_boxes and args.show_trails
    with pytest.raises(SystemExit):
        parser.parse_args(["--speed", "3"])
    assert gui.window_torch_threads(2) == 1 and gui.window_torch_threads(16) == 15 and gui.window_torch_threads(1) == 1


def test_the_whole_video_is_exported_every_frame_from_the_first(qtbot, make_window, models, long_video, tmp_path):
    window = long_video_window(make_window, models, long_video, paused=True, playback_speed=1.0)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    window.seek(30)
    qtbot.waitUntil(lambda: window.last_frame.index == 30, timeout=WAIT_MS)
    # "Export shown" has what was shown since the seek, and says so.
    assert json.loads(window.export_poses().read_text())["frames"][0]["frame_index"] == 30
    assert "(31–31)" in window.statusBar().currentMessage()
    target = tmp_path / "chosen" / "whole.json"
    window.export_whole_video(target)
    qtbot.waitUntil(lambda: window.last_export == target, timeout=WAIT_MS)
    document = json.loads(target.read_text())
    assert [frame["frame_index"] for frame in document["frames"]] == list(range(40))
    # The speed chosen before comes back.
    assert window.timeline.playback_speed == 1.0


@pytest.fixture
def x_server(tmp_path):
    """A private Xvfb display (":N") for the window, or skip when Xvfb, xdotool or Qt's xcb plugin is missing."""
    import os
    import shutil
    import subprocess

    from app.qt_platform import platform_problem

    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("needs Xvfb and xdotool (apt-get install xvfb xdotool)")
    display = f":{90 + os.getpid() % 500}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        environment = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=str(tmp_path / "config"))
        problem = platform_problem(environment)
        if problem is not None:
            pytest.skip(problem)
        yield environment
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow  # a GUI subprocess under Xvfb, about 10 CPU-seconds
def test_a_window_destroyed_by_the_window_system_ends_the_process(x_server, hrnet_reference_dir, long_video,
                                                                   tmp_path):
    """`xdotool windowclose` destroys the X window under Qt (as a desktop logging out does): the
    process must end cleanly instead of decoding and tracking invisibly."""
    import subprocess
    import sys

    source, detections = long_video
    command = [sys.executable, "main.py", "gui", "--source", source, "--speed", "0.25",
               "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
               "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
               "--det-file", str(detections), "--device", "cpu", "--no-flip", "--output-dir", str(tmp_path / "out")]
    root = Path(__file__).resolve().parents[1]
    gui = subprocess.Popen(command, cwd=root, env=x_server, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--pid", str(gui.pid)],
                               capture_output=True, text=True, timeout=120, env=x_server)
        window_id = found.stdout.split()[0]
        time.sleep(2.0)  # playing
        assert gui.poll() is None
        subprocess.run(["xdotool", "windowclose", window_id], check=True, timeout=30, env=x_server)
        _, stderr = gui.communicate(timeout=60)
    finally:
        if gui.poll() is None:
            gui.kill()
            gui.wait()
    assert gui.returncode == 0, stderr
    assert "destroyed by the window system" in stderr


def test_stepping_back_shows_recent_frames_again_without_reopening(qtbot, make_window, models, long_video):
    window = long_video_window(make_window, models, long_video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    step_frames(qtbot, window, 3)
    worker, shown = window.worker, window.last_frame
    ids_on_frame_2 = window.recent_frames._frames[-2].shown.track_ids.tolist()
    # Back and forward again at once: the same pipeline and tracker, the same IDs, no new frame computed.
    window.step_back()
    assert window.last_frame.index == 2 and window.worker is worker
    assert window.last_frame.shown.track_ids.tolist() == ids_on_frame_2
    assert window.timeline.label.text().endswith("frame 3 / 40") and window.controls.step_button.isEnabled()
    window.step_back()
    window.step()
    assert window.last_frame.index == 2
    window.step()
    assert window.last_frame is shown and window.frames_shown == 4
    # On the newest frame, Step asks the pipeline for the next one.
    step_frames(qtbot, window, 1)
    assert window.last_frame.index == 4 and window.worker is worker
    # Past the oldest kept frame, the worker seeks there.
    for _ in range(len(window.recent_frames) - 1):
        window.step_back()
    oldest = window.last_frame.index
    assert window.worker is worker and oldest == 0
    window.seek(3)
    qtbot.waitUntil(lambda: window.last_frame.index == 3, timeout=WAIT_MS)
    window.step_back()
    qtbot.waitUntil(lambda: window.last_frame.index == 2, timeout=WAIT_MS)
    assert window.worker is worker and window.worker.seeks_requested == 2


class CountingOpener:
    """Wraps the worker's `open_source_stoppable`: counts the opens, optionally takes the sources' `seek` away."""

    def __init__(self, monkeypatch, can_seek: bool = True) -> None:
        import app.worker

        self._open = app.worker.open_source_stoppable
        self.can_seek = can_seek
        self.start_indices: list[int] = []
        monkeypatch.setattr(app.worker, "open_source_stoppable", self)

    def __call__(self, spec, stop, start_index=0):
        self.start_indices.append(start_index)
        source = self._open(spec, stop, start_index=start_index)
        if not self.can_seek:
            # A container that cannot seek exactly.
            source.seek = lambda index: False
        return source


class CountingTracker:
    """Forwards to a real tracker and counts its updates."""

    def __init__(self, tracker) -> None:
        self._tracker = tracker
        self.updates = 0

    def __getattr__(self, name):
        return getattr(self._tracker, name)

    def update(self, *args, **kwargs):
        self.updates += 1
        return self._tracker.update(*args, **kwargs)


def file_frame(path: str, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(path)
    for _ in range(index + 1):
        ok, image = capture.read()
    capture.release()
    assert ok
    return image


def test_a_timeline_jump_seeks_in_the_open_file(qtbot, make_window, models, long_video, monkeypatch):
    from app.worker import default_tracker_factory

    opener = CountingOpener(monkeypatch)
    trackers = []

    def tracker_factory(**options):
        trackers.append(CountingTracker(default_tracker_factory(**options)))
        return trackers[-1]

    window = long_video_window(make_window, models, long_video, paused=True, tracker_factory=tracker_factory)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    step_frames(qtbot, window, 2)
    worker = window.worker
    window.timeline.slider.setValue(30)
    window.timeline.seek_requested.emit(30)
    qtbot.waitUntil(lambda: window.last_frame.index == 30, timeout=WAIT_MS)
    # The same thread and the same open file, on the exact frame, with a new tracker (IDs start over).
    assert opener.start_indices == [0] and window.worker is worker
    assert np.array_equal(window.last_frame.result.frame.image, file_frame(long_video[0], 30))
    assert len(trackers) == 2 and trackers[-1].updates >= 1
    assert window.controls.pause_button.isChecked() and window.timeline.label.text().endswith("frame 31 / 40")
    shown = []
    window.frame_displayed.connect(lambda frame: shown.append(frame.index))
    # A frame still on its way when the jump is asked for (here: the step's, waiting in
    # the event queue while the GUI thread sleeps) is not shown: only the frame sought.
    window.step()
    time.sleep(1.0)
    window.seek(10)
    qtbot.waitUntil(lambda: window.last_frame.index == 10, timeout=WAIT_MS)
    qtbot.wait(200)
    assert shown == [10]
    # Playing on from there, every frame follows in order; a jump while playing goes on playing.
    shown.clear()
    window.set_paused(False)
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=WAIT_MS)
    window.seek(5)
    qtbot.waitUntil(lambda: 5 in shown and shown[-1] >= 7, timeout=WAIT_MS)
    after = shown[shown.index(5):]
    assert after == list(range(5, 5 + len(after))) and opener.start_indices == [0] and window.worker is worker


def test_a_file_that_cannot_seek_is_reopened_at_the_frame(qtbot, make_window, models, long_video, monkeypatch):
    opener = CountingOpener(monkeypatch, can_seek=False)
    window = long_video_window(make_window, models, long_video, paused=True)
    qtbot.waitUntil(lambda: window.frames_shown == 1, timeout=WAIT_MS)
    worker = window.worker
    window.seek(30)
    qtbot.waitUntil(lambda: window.last_frame.index == 30, timeout=WAIT_MS)
    assert opener.start_indices == [0, 30] and window.worker is worker
    assert np.array_equal(window.last_frame.result.frame.image, file_frame(long_video[0], 30))
    step_frames(qtbot, window, 1)
    assert window.last_frame.index == 31 and window.error_text == ""


def test_recent_frames_are_kept_within_a_memory_budget():
    from types import SimpleNamespace

    from app.recent_frames import RecentFrames

    frames = [SimpleNamespace(index=index, buffer=np.zeros((10, 10, 3), np.uint8)) for index in range(10)]
    recent = RecentFrames(budget_bytes=3 * 300 * 4)  # four 300-byte frames, each held three times
    for frame in frames:
        recent.add(frame)
    assert len(recent) == 4 and recent.newest is frames[-1]
    assert [recent.back().index for _ in range(3)] == [8, 7, 6] and recent.back() is None
    assert recent.browsing and recent.forward().index == 7
    recent.add(frames[0])
    assert not recent.browsing and recent.forward() is None
