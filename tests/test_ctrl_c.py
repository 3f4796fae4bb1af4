"""Ctrl-C on `main.py track` (issue 14): the first stops cleanly, the second exits at once, never an abort.

A subprocess runs `track` with the tiny test model and a pose stage slowed to
a known call time (`tests/slow_track.py`), which logs when each call starts and
ends. What must hold is the exit status (130), no SIGABRT or "terminate called",
partial outputs left as `.part` files, and from the call log: the first Ctrl-C
exits after the call in flight has returned, the second inside it. No
wall-clock bound: a loaded machine cannot change the order of those events.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.sample_data import TINY_MODEL_ARGS as MODEL_ARGS

# Each test starts `track` in a subprocess and waits for its model calls: 5-7 CPU-seconds.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
FRAMES = 60


@pytest.fixture(scope="module")
def video_and_boxes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ctrl_c")
    video = folder / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for index in range(FRAMES):
        writer.write(np.full((120, 160, 3), (index * 4) % 256, np.uint8))
    writer.release()
    boxes = folder / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": [40, 10, 50, 100], "score": 0.9}
                                 for i in range(FRAMES)]))
    return video, boxes


def _start(tmp_path, video_and_boxes, call_s: float) -> tuple[subprocess.Popen, Path]:
    video, boxes = video_and_boxes
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "tests" / "slow_track.py"), str(call_s), "track", str(video),
               "--out", str(out), "--det-file", str(boxes), "--det-image-key", "index", *MODEL_ARGS]
    marker = tmp_path / "pose_call_started"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", SLOW_TRACK_MARKER=str(marker),
               SLOW_TRACK_LOG=str(_call_log(tmp_path)))
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = out / "walk.json.part"
    deadline = time.monotonic() + 120
    while not part.exists():  # the models are built and the pipeline is running
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"track did not start: {process.communicate()}")
        time.sleep(0.05)
    # Well inside the run, and just after a pose call started, so that it is in
    # flight when the signal comes (a stopped pipeline starts no further call).
    time.sleep(2 * call_s)
    marker.unlink(missing_ok=True)
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no pose call started: {process.communicate()}")
        time.sleep(0.01)
    time.sleep(min(0.1, call_s / 5))
    return process, out


def _call_log(tmp_path: Path) -> Path:
    return tmp_path / "pose_calls.log"


def _calls(tmp_path: Path) -> list[str]:
    """The pose calls' "start"/"end" lines, in order."""
    return _call_log(tmp_path).read_text().split()


def _finish(process: subprocess.Popen, timeout_s: float = 60) -> tuple[int, str, str]:
    """(exit status, stdout, stderr)."""
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("track did not exit after Ctrl-C")
    return process.returncode, stdout, stderr


def _assert_clean(returncode: int, stderr: str, out: Path) -> None:
    assert returncode == 130, stderr
    assert returncode != -signal.SIGABRT and "terminate called" not in stderr and "Aborted" not in stderr, stderr
    assert (out / "walk.json.part").exists()  # left for the rerun, which redoes the video
    assert not (out / "walk.json").exists()


def test_one_ctrl_c_stops_after_the_call_in_flight(tmp_path, video_and_boxes):
    call_s = 0.5
    process, out = _start(tmp_path, video_and_boxes, call_s)
    process.send_signal(signal.SIGINT)
    returncode, stdout, stderr = _finish(process)
    _assert_clean(returncode, stderr, out)
    assert "press Ctrl-C again to quit at once" in stderr
    # The summary counts the frames the log counts.
    logged = re.search(r"walk: interrupted after (\d+) frames", stderr)
    assert logged and int(logged.group(1)) > 0, stderr
    assert re.search(rf"STOPPED\s+walk: {logged.group(1)} frames", stdout), stdout
    calls = _calls(tmp_path)
    # The call in flight at the signal returned before the process ended: it was not cut off.
    assert calls.count("start") == calls.count("end") >= 1 and calls[-1] == "end", calls


def test_a_second_ctrl_c_exits_at_once_without_waiting_for_the_call(tmp_path, video_and_boxes):
    call_s = 4.0  # the first Ctrl-C's shutdown waits for this call; the second must not
    process, out = _start(tmp_path, video_and_boxes, call_s)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    returncode, _, stderr = _finish(process)
    _assert_clean(returncode, stderr, out)
    assert "second Ctrl-C" in stderr
    calls = _calls(tmp_path)
    # Exited inside the call in flight (it never logged its end): did not wait for it.
    assert calls[-1] == "start" and calls.count("start") == calls.count("end") + 1, calls
