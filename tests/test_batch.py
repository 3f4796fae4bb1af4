"""Batch tracking end to end: the real tiny HRNet (seeded weights) on the PoseTrack18 mini video and frames."""

from __future__ import annotations

import _thread
import csv
import json
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.batch import (
    FORMAT_SUFFIXES,
    BatchSummary,
    InputVideo,
    check_outputs_spare_inputs,
    discover_inputs,
    output_paths,
    parse_formats,
    run_batch,
)
from pipeline.engines import BatchWork, LocalEngine, Task
from pipeline.work import InputInterrupted, Models, VideoResult
from tests.pipeline_fakes import FakeDetector, FakeEstimator

DATA = Path(__file__).parent / "data"
VIDEO_DIR = DATA / "posetrack18_mini" / "videos" / "000001_mpiinew_test"
VIDEO = VIDEO_DIR / "000001_mpiinew_test.mp4"
TINY_CONFIG = DATA / "hrnet_reference" / "dev_tiny.yaml"
TINY_WEIGHTS = DATA / "hrnet_reference" / "dev_tiny_state_dict.pt"
ALL_FORMATS = tuple(FORMAT_SUFFIXES)


@pytest.fixture(scope="module")
def estimator():
    from pose.estimator import PoseEstimator

    return PoseEstimator.from_config(str(TINY_CONFIG), weights=str(TINY_WEIGHTS), device="cpu", flip_test=False)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """Boxes from a detection file keyed by frame index: two people, the second missing on frame 2."""
    from detector import FileDetector

    entries = [{"image_id": i, "category_id": 1, "bbox": [300 + 5 * i, 150, 200, 450], "score": 0.95}
               for i in range(5)]
    entries += [{"image_id": i, "category_id": 1, "bbox": [700, 200, 180, 400], "score": 0.8}
                for i in range(5) if i != 2]
    path = tmp_path_factory.mktemp("detections") / "detections.json"
    path.write_text(json.dumps(entries))
    return FileDetector(path, key="index")


@pytest.fixture()
def tracker():
    from tracker import PoseTracker

    return PoseTracker(min_score=0.5)


def track(inputs, out, detector, estimator, tracker, formats=("json",), **options):
    return run_batch(inputs, out, formats, detector=detector, estimator=estimator, tracker=tracker,
                     progress=False, **options)


# -- discovery ------------------------------------------------------------------


def test_discover_a_single_video_and_a_frame_folder():
    assert discover_inputs(VIDEO) == [InputVideo(VIDEO, "000001_mpiinew_test", "video")]
    frames = discover_inputs(VIDEO_DIR, input_type="frames")
    assert frames == [InputVideo(VIDEO_DIR, "000001_mpiinew_test", "frames")]
    # In auto mode, images next to a video are its extracted frames: only the video is taken.
    assert [item.kind for item in discover_inputs(VIDEO_DIR)] == ["video"]


def test_discover_videos_recursively_and_frame_folders(tmp_path):
    (tmp_path / "day1" / "cam2").mkdir(parents=True)
    (tmp_path / "a.MP4").write_bytes(b"x")
    (tmp_path / "day1" / "b.avi").write_bytes(b"x")
    (tmp_path / "day1" / "cam2" / "c.mkv").write_bytes(b"x")
    (tmp_path / "day1" / "notes.txt").write_text("not a video")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.mp4").write_bytes(b"x")
    (tmp_path / "seq" / "000001").mkdir(parents=True)
    (tmp_path / "seq" / "000001" / "000000.jpg").write_bytes(b"x")
    found = discover_inputs(tmp_path)
    assert [(item.name, item.kind) for item in found] == [
        ("a", "video"), ("day1/b", "video"), ("day1/cam2/c", "video"), ("seq/000001", "frames")]
    assert [item.name for item in discover_inputs(tmp_path, input_type="videos")] == ["a", "day1/b", "day1/cam2/c"]
    paths = output_paths(tmp_path / "out", found[2], ("json", "video", "posetrack"))
    assert paths == {"json": tmp_path / "out/day1/cam2/c.json", "video": tmp_path / "out/day1/cam2/c.mp4",
                     "posetrack": tmp_path / "out/day1/cam2/c.posetrack.json"}


def test_discover_names_the_files_it_leaves_out_and_why(tmp_path, caplog):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "clip").write_bytes(b"x")  # a video without its extension
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / ".DS_Store").write_bytes(b"x")  # hidden: not worth a word
    with caplog.at_level("WARNING"):
        assert [item.name for item in discover_inputs(tmp_path)] == ["a"]
    assert "2 file(s) left out: clip (no extension), notes.txt (.txt is not a video or image extension)" in caplog.text
    assert ".DS_Store" not in caplog.text


def test_discover_refuses_empty_folders_and_clashing_names(tmp_path):
    with pytest.raises(ValueError, match="no videos or image folders"):
        discover_inputs(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "clip.avi").write_bytes(b"x")
    with pytest.raises(ValueError, match="same outputs"):
        discover_inputs(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        discover_inputs(tmp_path / "missing")


def test_discover_never_takes_inputs_from_the_output_folder(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "out" / "day1").mkdir(parents=True)
    (tmp_path / "out" / "clip.mp4").write_bytes(b"x")  # an annotated video of an earlier run
    (tmp_path / "out" / "day1" / "000000.jpg").write_bytes(b"x")
    assert [item.name for item in discover_inputs(tmp_path, exclude=[tmp_path / "out"])] == ["clip"]
    # An output folder that is INPUT itself or above it hides nothing.
    assert len(discover_inputs(tmp_path / "out", exclude=[tmp_path])) == 2


def test_an_output_that_would_replace_an_input_video_is_refused(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"x")
    inputs = discover_inputs(tmp_path)
    check_outputs_spare_inputs(inputs, tmp_path, ("json", "csv"))
    with pytest.raises(ValueError, match="would overwrite the input video"):
        check_outputs_spare_inputs(inputs, tmp_path, ("json", "video"))


def test_parse_formats():
    assert parse_formats("json,csv, video") == ("json", "csv", "video")
    assert parse_formats(["json", "coco,json"]) == ("json", "coco")
    with pytest.raises(ValueError, match="unknown output format 'gif'"):
        parse_formats("json,gif")


# -- end to end -----------------------------------------------------------------


def test_video_end_to_end_writes_every_format_following_the_schema(tmp_path, detector, estimator, tracker):
    summary = track(discover_inputs(VIDEO), tmp_path, detector, estimator, tracker, formats=ALL_FORMATS)
    assert summary.done == ["000001_mpiinew_test"] and summary.exit_status == 0 and summary.frames == 5
    assert not list(tmp_path.glob("*.part*"))

    document = json.loads((tmp_path / "000001_mpiinew_test.json").read_text())
    assert document["format"] == "hrtrack.poses" and document["version"] == 1
    assert (document["width"], document["height"], document["fps"]) == (1280, 720, 30.0)
    assert document["keypoint_names"] == list(estimator.keypoint_names)
    assert document["complete"] is True and document["num_frames"] == 5 and document["dropped_frames"] == 0
    frames = document["frames"]
    assert [f["frame_index"] for f in frames] == [0, 1, 2, 3, 4]
    assert [f["timestamp_s"] for f in frames] == pytest.approx([i / 30 for i in range(5)], abs=1e-6)
    assert [len(f["people"]) for f in frames] == [2, 2, 1, 2, 2]
    for frame in frames:
        assert frame["image_path"] is None and set(frame["timings_ms"]) >= {"detection", "pose", "tracking"}
        for person in frame["people"]:
            assert set(person) == {"track_id", "box", "box_score", "score", "keypoints"}
            assert len(person["box"]) == 4 and len(person["keypoints"]) == 17
            assert all(len(point) == 3 for point in person["keypoints"])
    # The box of the first person comes from the detection file (xywh -> xyxy).
    assert frames[0]["people"][0]["box"] == [300.0, 150.0, 500.0, 600.0]
    ids = [[p["track_id"] for p in f["people"]] for f in frames]
    assert ids[0] == [1, 2] and all(len(set(i)) == len(i) for i in ids)

    with open(tmp_path / "000001_mpiinew_test.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9 and [int(r["frame_index"]) for r in rows] == [0, 0, 1, 1, 2, 3, 3, 4, 4]
    assert float(rows[0]["box_x1"]) == 300.0 and "right_ankle_score" in rows[0]

    coco = json.loads((tmp_path / "000001_mpiinew_test.coco.json").read_text())
    assert len(coco) == 9 and len(coco[0]["keypoints"]) == 51 and coco[0]["bbox"] == [300.0, 150.0, 200.0, 450.0]

    from core.posetrack_format import read_posetrack_file

    (video,) = read_posetrack_file(tmp_path / "000001_mpiinew_test.posetrack.json", ground_truth=False)
    assert len(video.frames) == 5 and video.frames[0].num_people == 2

    capture = cv2.VideoCapture(str(tmp_path / "000001_mpiinew_test.mp4"))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    assert decoded == 5 and int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1280
    capture.release()


def test_frame_folder_end_to_end_keeps_image_order(tmp_path, detector, estimator, tracker):
    summary = track(discover_inputs(VIDEO_DIR, input_type="frames"), tmp_path, detector, estimator, tracker)
    assert summary.done == ["000001_mpiinew_test"]
    frames = json.loads((tmp_path / "000001_mpiinew_test.json").read_text())["frames"]
    assert [Path(f["image_path"]).name for f in frames] == [f"{i:06d}.jpg" for i in range(5)]
    assert [f["frame_index"] for f in frames] == list(range(5))


def test_corrupt_video_is_skipped_with_its_reason_and_the_others_finish(tmp_path, detector, estimator, tracker):
    inputs = tmp_path / "videos"
    (inputs / "sub").mkdir(parents=True)
    shutil.copy(VIDEO, inputs / "good.mp4")
    (inputs / "sub" / "bad.mp4").write_bytes(b"\x00\x01 this is not a video " * 100)
    (inputs / "empty.mp4").write_bytes(b"")
    summary = track(discover_inputs(inputs), tmp_path / "out", detector, estimator, tracker, max_frames=2)
    assert summary.done == ["good"]
    assert [name for name, _ in summary.failed] == ["empty", "sub/bad"]
    assert all("mp4" in reason and ("corrupt" in reason or "empty" in reason) for _, reason in summary.failed)
    assert summary.exit_status == 1
    assert any("FAILED   sub/bad" in line for line in summary.lines())
    assert (tmp_path / "out" / "good.json").is_file()
    assert not (tmp_path / "out" / "sub" / "bad.json").exists()


def test_killed_run_resumes(tmp_path, detector, estimator, tracker):
    inputs = tmp_path / "videos"
    inputs.mkdir()
    for name in ("a", "b"):
        shutil.copy(VIDEO, inputs / f"{name}.mp4")
    out = tmp_path / "out"
    formats = ("json", "csv")
    track(discover_inputs(inputs), out, detector, estimator, tracker, formats=formats, max_frames=2)
    # Simulate a run killed while writing b: only temporary files of b remain.
    for suffix in (".json", ".csv"):
        final = out / f"b{suffix}"
        final.rename(final.with_name(final.name + ".part"))
    a_written = (out / "a.json").stat().st_mtime_ns
    summary = track(discover_inputs(inputs), out, detector, estimator, tracker, formats=formats, max_frames=2)
    assert summary.skipped == ["a"] and summary.done == ["b"] and summary.exit_status == 0
    assert (out / "a.json").stat().st_mtime_ns == a_written
    assert json.loads((out / "b.json").read_text())["num_frames"] == 2
    assert not list(out.glob("*.part"))


def test_ctrl_c_leaves_only_temporary_files_and_reports_interrupted(tmp_path):
    inputs = [InputVideo(VIDEO_DIR, "clip", "frames")]
    timer = threading.Timer(0.4, _thread.interrupt_main)
    timer.start()
    summary = run_batch(inputs, tmp_path, ("json", "csv"), detector=FakeDetector(), progress=False,
                        estimator=FakeEstimator(sleep_s=0.3), tracker=None)
    timer.join()
    assert summary.interrupted and summary.exit_status == 130 and summary.done == []
    assert not (tmp_path / "clip.json").exists() and not (tmp_path / "clip.csv").exists()
    partial = (tmp_path / "clip.json.part").read_text()
    assert partial.rstrip().endswith('"complete": false}')
    json.loads(partial)  # flushed and closed: readable, and marked incomplete


def test_untracked_run_writes_minus_one_ids(tmp_path):
    summary = run_batch([InputVideo(VIDEO_DIR, "clip", "frames")], tmp_path, ("json",), detector=FakeDetector(),
                        estimator=FakeEstimator(), tracker=None, progress=False, max_frames=3)
    assert summary.done == ["clip"]
    frames = json.loads((tmp_path / "clip.json").read_text())["frames"]
    assert len(frames) == 3
    assert {p["track_id"] for f in frames for p in f["people"]} == {-1}
    assert np.array(frames[0]["people"][0]["keypoints"]).shape == (17, 3)


def test_frames_without_people_are_written_in_every_format(tmp_path, estimator, tracker):
    """A video where the detector finds nobody: every format is complete, one entry per frame."""
    from detector import FileDetector

    path = tmp_path / "no_detections.json"
    # Frame 0's only box scores below the threshold; the other frames have no entry (a file for
    # other images altogether is an error: tests/test_cli_track.py).
    path.write_text(json.dumps([{"image_id": 0, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.1}]))
    out = tmp_path / "out"
    detector = FileDetector(path, key="index", score_threshold=0.5)
    summary = track(discover_inputs(VIDEO), out, detector, estimator, tracker,
                    formats=ALL_FORMATS, max_frames=3)
    assert summary.done == ["000001_mpiinew_test"] and summary.exit_status == 0
    frames = json.loads((out / "000001_mpiinew_test.json").read_text())["frames"]
    assert [f["people"] for f in frames] == [[], [], []]
    assert json.loads((out / "000001_mpiinew_test.coco.json").read_text()) == []
    posetrack = json.loads((out / "000001_mpiinew_test.posetrack.json").read_text())
    assert len(posetrack["images"]) == 3 and posetrack["annotations"] == []


def test_a_trial_run_does_not_make_a_full_run_skip_the_video(tmp_path, detector, estimator, tracker):
    inputs = discover_inputs(VIDEO)
    trial = track(inputs, tmp_path, detector, estimator, tracker, max_frames=2)
    assert trial.done == ["000001_mpiinew_test"] and (tmp_path / "000001_mpiinew_test.trial").exists()
    # The summary and the JSON both say that the outputs are a partial trial.
    assert trial.trials == ["000001_mpiinew_test"] and "partial (--max-frames trial)" in "\n".join(trial.lines())
    document = json.loads((tmp_path / "000001_mpiinew_test.json").read_text())
    assert document["complete"] is False and document["max_frames"] == 2
    again = track(inputs, tmp_path, detector, estimator, tracker, max_frames=2)
    assert again.skipped == ["000001_mpiinew_test"]  # another trial: nothing to redo
    full = track(inputs, tmp_path, detector, estimator, tracker)
    assert full.done == ["000001_mpiinew_test"] and full.frames == 5
    assert not (tmp_path / "000001_mpiinew_test.trial").exists()
    assert len(json.loads((tmp_path / "000001_mpiinew_test.json").read_text())["frames"]) == 5
    assert track(inputs, tmp_path, detector, estimator, tracker).skipped == ["000001_mpiinew_test"]


def test_ctrl_c_summary_counts_the_frames_done_and_lists_the_inputs_not_started(tmp_path):
    def work(name, out_dir, models):
        if name == "b":
            raise InputInterrupted(7)  # what track_video raises after 7 frames
        return VideoResult(name, "done", 3, 1.0)

    tasks = [Task(name, name) for name in "abcd"]
    report = LocalEngine(Models(None, None)).run(tasks, BatchWork(lambda: None, work), tmp_path, progress=False)
    summary = BatchSummary(report.results, [], report.not_started)
    lines = "\n".join(summary.lines())
    assert summary.exit_status == 130 and summary.not_started == ["c", "d"]
    assert "STOPPED  b: 7 frames" in lines and "not started c" in lines and "not started d" in lines
    assert "(interrupted; not started: 2)" in lines
