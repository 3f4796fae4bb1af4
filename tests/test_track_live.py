"""`track` on cameras and streams: URLs kept intact, a recording ends cleanly on --max-frames or Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading

import pytest

import main
from pipeline import capture
from pipeline.batch import Models, TrackOptions, discover_inputs, output_paths, track_video
from tests.pipeline_fakes import FakeCamera, FakeDetector, FakeEstimator, FakeTracker
from tests.sample_data import TINY_MODEL_ARGS as MODEL_ARGS



def test_urls_and_cameras_are_live_inputs_named_after_the_source():
    (stream,) = discover_inputs("rtsp://127.0.0.1:9/x")
    assert stream.kind == "live" and stream.path == "rtsp://127.0.0.1:9/x"  # not folded to rtsp:/127.0.0.1...
    assert stream.name.startswith("rtsp_127.0.0.1_9_x_") and stream.name.endswith("Z")
    (camera,) = discover_inputs("0")
    assert camera.kind == "live" and camera.name.startswith("camera0_")


def test_an_unreachable_stream_is_named_as_given(tmp_path, caplog):
    detections = tmp_path / "detections.json"
    detections.write_text("[]")
    with caplog.at_level(logging.ERROR):
        status = main.main(["track", "rtsp://127.0.0.1:9/x", "--out", str(tmp_path / "out"), "--open-timeout", "0.5",
                            "--det-file", str(detections), *MODEL_ARGS])
    assert status == 1
    assert "rtsp://127.0.0.1:9/x" in caplog.text and "rtsp:/127.0.0.1" not in caplog.text.replace("rtsp://", "")
    assert not list((tmp_path / "out").glob("*.part"))


@pytest.fixture()
def fake_camera(monkeypatch):
    """cv2.VideoCapture replaced by a camera delivering 100 frames/s (only the JSON sink runs: no video files)."""
    monkeypatch.setattr(capture.cv2, "VideoCapture", lambda *_: FakeCamera(fps=100.0))


def record(tmp_path, **options):
    item = discover_inputs("0")[0]
    paths = output_paths(tmp_path, item, ("json", "csv"))
    models = Models(FakeDetector(), FakeEstimator(), FakeTracker())
    return item, paths, track_video(item, paths, models, TrackOptions(progress=False, **options))


def test_a_camera_recording_stops_after_max_frames_with_complete_outputs(tmp_path, fake_camera):
    item, paths, result = record(tmp_path, max_frames=5)
    assert result.status == "done" and result.frames == 5
    document = json.loads(paths["json"].read_text())
    assert document["complete"] is True and document["num_frames"] == 5 and document["source"] == "camera 0"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())  # no .trial


def test_ctrl_c_finishes_a_recording_instead_of_abandoning_it(tmp_path, fake_camera):
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    previous = signal.getsignal(signal.SIGINT)
    timer.start()
    try:
        item, paths, result = record(tmp_path)
    finally:
        timer.cancel()
    assert result.status == "done" and result.frames > 0
    document = json.loads(paths["json"].read_text())
    assert document["complete"] is True and document["num_frames"] == result.frames
    assert signal.getsignal(signal.SIGINT) is previous  # the usual Ctrl-C policy is back
