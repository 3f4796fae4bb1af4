"""Runs sharing an output folder (issue 21): never a corrupt file, and a broken final file is never taken as done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.io import AtomicTextFile
from core.output_lock import OutputBusyError, hold_output_lock
from pipeline.batch import InputVideo, Models, TrackOptions, discover_inputs, lock_path, output_paths, track_video
from pipeline.engines import Task, write_gathered
from tests.pipeline_fakes import FakeDetector, FakeTracker
from tests.sample_data import TINY_MODEL_ARGS
from tests.test_batch_faults import CocoFakeEstimator, batch, write_video

ROOT = Path(__file__).parent.parent

_HOLD_LOCK = """
import sys, time
from core.output_lock import hold_output_lock
with hold_output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold_in_other_process(path: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert process.stdout.readline().strip() == "held"
    return process


def test_an_input_whose_lock_another_process_holds_is_left_to_it_and_named(tmp_path):
    video = write_video(tmp_path / "in" / "v1.avi", 4)
    item = InputVideo(video, "v1", "video")
    paths = output_paths(tmp_path / "out", item, ("json",))
    holder = _hold_in_other_process(lock_path(paths))
    try:
        result = track_video(item, paths, Models(FakeDetector(), CocoFakeEstimator(), FakeTracker()),
                             TrackOptions(progress=False))
    finally:
        holder.kill()
        holder.wait()
    assert result.status == "busy" and f"pid {holder.pid}" in result.reason and str(tmp_path / "out") in result.reason
    assert not paths["json"].exists() and not Path(str(paths["json"]) + ".part").exists()
    # The kernel let go of the killed holder's lock: the next run takes it.
    summary = batch(discover_inputs(tmp_path / "in"), tmp_path / "out")
    assert summary.done == ["v1"] and summary.exit_status == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["v1.json"]


def test_a_busy_input_fails_the_batch_summary_but_the_others_are_done(tmp_path):
    write_video(tmp_path / "in" / "v1.avi", 3)
    write_video(tmp_path / "in" / "v2.avi", 3, seed=1)
    holder = _hold_in_other_process(tmp_path / "out" / "v1.lock")
    try:
        summary = batch(discover_inputs(tmp_path / "in"), tmp_path / "out")
    finally:
        holder.kill()
        holder.wait()
    assert summary.busy == ["v1"] and summary.done == ["v2"] and summary.exit_status == 1
    text = "\n".join(summary.lines())
    assert "busy (another run writes them): 1" in text and f"BUSY     v1: another hrtrack (pid {holder.pid}" in text


def test_the_lock_is_exclusive_within_a_process_too(tmp_path):
    with hold_output_lock(tmp_path / "x.lock"):
        with pytest.raises(OutputBusyError, match=f"pid {os.getpid()}"):
            with hold_output_lock(tmp_path / "x.lock"):
                pass
    assert not (tmp_path / "x.lock").exists()


@pytest.mark.parametrize("damage", ["interleaved", "short", "says_partial"])
def test_a_final_named_output_that_is_broken_or_short_is_tracked_again(tmp_path, damage):
    write_video(tmp_path / "in" / "v1.avi", 6)
    out = tmp_path / "out"
    assert batch(discover_inputs(tmp_path / "in"), out, ("json", "csv")).done == ["v1"]
    path = out / "v1.json"
    document = json.loads(path.read_text())
    if damage == "interleaved":  # what two unlocked writers of one .part file left
        path.write_text(path.read_text() + path.read_text()[:200])
    elif damage == "short":
        document["frames"] = document["frames"][:3]
        document["num_frames"] = 3
        path.write_text(json.dumps(document))
    else:
        document["complete"] = False
        path.write_text(json.dumps(document))
    rerun = batch(discover_inputs(tmp_path / "in"), out, ("json", "csv"))
    assert rerun.done == ["v1"] and rerun.skipped == []
    assert json.loads(path.read_text())["num_frames"] == 6
    assert batch(discover_inputs(tmp_path / "in"), out, ("json", "csv")).skipped == ["v1"]


def test_a_broken_csv_beside_a_whole_json_is_tracked_again(tmp_path):
    write_video(tmp_path / "in" / "v1.avi", 4)
    out = tmp_path / "out"
    batch(discover_inputs(tmp_path / "in"), out, ("json", "csv"))
    (out / "v1.csv").write_text((out / "v1.csv").read_text() + "1,2\n")
    assert batch(discover_inputs(tmp_path / "in"), out, ("json", "csv")).done == ["v1"]


@pytest.mark.slow  # two `track` processes with the tiny model: about 10 CPU-seconds
def test_two_track_runs_into_one_folder_never_corrupt_a_file(tmp_path):
    videos = tmp_path / "in"
    frames = {f"v{index}": 12 for index in range(1, 5)}
    for index, (name, count) in enumerate(frames.items()):
        write_video(videos / f"{name}.avi", count, size=(160, 120), seed=index)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": [40, 10, 50, 100], "score": 0.9}
                                 for i in range(12)]))
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "tests" / "slow_track.py"), "0.05", "track", str(videos),
               "--out", str(out), "--formats", "json,csv", "--det-file", str(boxes), "--det-image-key", "index",
               *TINY_MODEL_ARGS]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    time.sleep(0.5)
    runs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True))
    outputs = [run.communicate(timeout=300) for run in runs]
    # The run that ends last finds every input complete: the other's are "skipped", not BUSY.
    assert 0 in [run.returncode for run in runs], outputs
    for run, (stdout, stderr) in zip(runs, outputs):
        assert run.returncode in (0, 1), stderr
        assert "Traceback" not in stderr and "cannot write" not in stderr, stderr
    for name, count in frames.items():
        document = json.loads((out / f"{name}.json").read_text())
        assert document["num_frames"] == count and document["complete"] is True
        rows = (out / f"{name}.csv").read_text().splitlines()
        assert len(rows) == 1 + count  # the header, one person per frame
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}{suffix}" for name in frames
                                                            for suffix in (".json", ".csv"))
    done = [{line.split()[1].rstrip(":") for line in stdout.splitlines() if line.startswith("  done ")}
            for stdout, _ in outputs]
    assert not done[0] & done[1], outputs  # no input tracked twice
    assert done[0] | done[1] <= set(frames)


def test_gathered_outputs_are_not_written_under_another_runs_lock(tmp_path):
    task = Task("v1", None, ("v1.json",), ("v1.trial",), lock="v1.lock")
    with hold_output_lock(tmp_path / "v1.lock"):
        with pytest.raises(OutputBusyError, match=f"pid {os.getpid()}"):
            write_gathered(tmp_path, task, {"v1.json": b"{}"})
    assert list(tmp_path.iterdir()) == []
    write_gathered(tmp_path, task, {"v1.json": b"{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.json"]


@pytest.mark.parametrize("meddling", ["renamed_away", "replaced", "written_beyond"])
def test_a_part_file_another_process_touched_is_never_given_the_final_name(tmp_path, meddling):
    out = AtomicTextFile(tmp_path / "v1.json")
    out.write('{"frames": [')
    if meddling == "renamed_away":  # the other writer finished first and renamed the shared .part file
        out.part.rename(tmp_path / "v1.json")
    elif meddling == "replaced":
        out.part.unlink()
        out.part.write_text("{}")
    else:
        with open(out.part, "w") as other:
            other.write("x" * 100)
    out.write("]}")
    with pytest.raises(OSError, match="changed by another process"):
        out.commit()
    if meddling != "renamed_away":
        assert not (tmp_path / "v1.json").exists()
