"""What `track` prints (issue 21): progress that moves and does not tangle with the log, no third-party lines."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.progress import InputProgress
from tests.sample_data import SAMPLE_VIDEO, TINY_MODEL_ARGS
from tests.test_batch_faults import small_disk  # noqa: F401 - a fixture: a 300 KB tmpfs

ROOT = Path(__file__).parent.parent


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_without_a_terminal_progress_is_log_lines_that_count_the_crops_of_a_long_frame(caplog):
    crops = [0]
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with InputProgress("crowd", 3, crops_done=lambda: crops[0], terminal=False, log_every_s=0.0) as progress:
            progress.update(1)
            crops[0] += 40  # the next frame's 200 people are going through the network
            _wait_for(lambda: "40 person crops" in caplog.text)
    assert re.search(r"crowd: 1/3 frames \([\d.]+ fps\), 40 person crops of the next frames done", caplog.text)


def test_on_a_terminal_the_bar_shows_the_crops_of_a_long_frame(capsys):
    crops = [0]
    with InputProgress("crowd", 3, crops_done=lambda: crops[0], terminal=True) as progress:
        progress.update(1)
        crops[0] += 16
        _wait_for(lambda: "16 crops" in (progress._bar.postfix or ""))
        progress.update(1)
        assert not progress._bar.postfix  # a finished frame clears it


def test_main_without_its_dependencies_says_how_to_get_them():
    # -S: no site-packages, as with a system Python outside the project's environment.
    completed = subprocess.run([sys.executable, "-S", "main.py", "track", "video.mp4"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "is missing from this Python" in completed.stderr and "make install" in completed.stderr
    assert ".venv/bin/python main.py" in completed.stderr


@pytest.mark.slow  # a `track` subprocess with the tiny model: about 5 CPU-seconds
def test_track_in_a_pipe_prints_log_lines_only_and_no_third_party_lines(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(SAMPLE_VIDEO, videos / "good.mp4")
    (videos / "cut.mp4").write_bytes(SAMPLE_VIDEO.read_bytes()[:3000])  # FFmpeg: "moov atom not found"
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": [300, 150, 200, 450], "score": 0.9}
                                 for i in range(5)]))
    model_args = [arg for arg in TINY_MODEL_ARGS if arg != "--no-progress"]  # progress on, as users run it
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENCV_")}
    completed = subprocess.run(
        [sys.executable, "main.py", "track", str(videos), "--out", str(tmp_path / "out"), "--det-file", str(boxes),
         "--det-image-key", "index", *model_args], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(env, PYTHONPATH=str(ROOT)))
    assert completed.returncode == 1, completed.stderr  # cut.mp4 failed, good.mp4 done
    assert "\r" not in completed.stderr  # no bar redraws running into the log lines
    assert "moov atom" not in completed.stderr
    assert "cut.mp4: cannot be opened as a video" in completed.stderr
    for line in completed.stderr.splitlines():
        assert re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ", line), line


@pytest.mark.slow  # imports torch in a subprocess: about 4 CPU-seconds
def test_torchs_cuda_home_warning_is_not_printed_on_a_cpu_machine():
    script = ("import sys, main\n"
              "main.main(['weights', 'path', 'no_such_name'])\n"
              "import torch.utils.cpp_extension\n")
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, CUDA_HOME="/nonexistent/cuda", PYTHONPATH=str(ROOT),
                                        CUDA_VISIBLE_DEVICES=""))
    assert "unknown weights name" in completed.stderr  # main ran, and logged as usual
    assert "No CUDA runtime is found" not in completed.stderr


_WRITE_TO_A_FULL_DISK = """
import sys
import main
main.main(["weights", "path", "no_such_name"])  # as every command starts, before OpenCV loads
import cv2, numpy as np
writer = cv2.VideoWriter(sys.argv[1], cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 240))
for seed in range(40):
    writer.write(np.random.default_rng(seed).integers(0, 255, (240, 320, 3), np.uint8))
writer.release()
"""


def test_opencvs_failed_write_lines_are_not_printed_on_a_full_disk(small_disk):
    completed = subprocess.run([sys.executable, "-c", _WRITE_TO_A_FULL_DISK, str(small_disk / "clip.mp4")],
                               cwd=ROOT, capture_output=True, text=True, timeout=120,
                               env=dict({key: value for key, value in os.environ.items()
                                         if not key.startswith("OPENCV_")}, PYTHONPATH=str(ROOT)))
    assert "unknown weights name" in completed.stderr  # main ran
    assert "Failed to write frame" not in completed.stderr  # 27 such lines before (issue 21)
