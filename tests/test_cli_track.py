"""`main.py track`: arguments, outputs, rerun skipping, exit statuses."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main
from cli import options as cli_options
from tests.sample_data import SAMPLE_VIDEO as VIDEO, TINY_MODEL_ARGS as MODEL_ARGS

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def detections(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("detections") / "detections.json"
    path.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": [300, 150, 200, 450], "score": 0.9}
                                for i in range(5)]))
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    return main.build_parser("track").parse_args(["track", *argv])


def test_help_lists_the_shared_and_track_options():
    completed = subprocess.run([sys.executable, "main.py", "track", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode == 0
    for option in ("--pose-config", "--pose-weights", "--detector", "--det-weights", "--det-file", "--device",
                   "--out", "--formats", "--batch-size", "--max-frames", "--track-max-age", "--tracker-option"):
        assert option in completed.stdout


def test_track_writes_outputs_then_skips_them_on_a_rerun(tmp_path, detections, capsys):
    out = tmp_path / "out"
    argv = ["track", str(VIDEO), "--out", str(out), "--formats", "json,csv,video", "--det-file", str(detections),
            "--det-image-key", "index", "--max-frames", "3", "--track-max-age", "5", *MODEL_ARGS]
    assert main.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "000001_mpiinew_test.csv", "000001_mpiinew_test.json", "000001_mpiinew_test.mp4",
        "000001_mpiinew_test.trial"]  # --max-frames: a trial, which a full run would redo
    document = json.loads((out / "000001_mpiinew_test.json").read_text())
    assert document["num_frames"] == 3 and [len(f["people"]) for f in document["frames"]] == [1, 1, 1]
    assert document["pose_backend"] == {"backend": "torch"}  # what ran the network, for whoever reads the file
    printed = capsys.readouterr().out
    assert "done: 1" in printed and "pose network: torch (eager fp32, the reference)" in printed
    assert main.main(argv) == 0
    assert "skipped (already complete): 1" in capsys.readouterr().out


def test_a_rerun_with_the_output_folder_inside_the_input_does_not_track_its_own_outputs(tmp_path, detections, capsys):
    inputs = tmp_path / "videos"
    inputs.mkdir()
    shutil.copy(VIDEO, inputs / "clip.mp4")
    argv = ["track", str(inputs), "--out", str(inputs / "out"), "--formats", "json,video", "--det-file",
            str(detections), "--det-image-key", "index", "--max-frames", "1", *MODEL_ARGS]
    assert main.main(argv) == 0
    assert main.main(argv) == 0
    assert "done: 0, skipped (already complete): 1, failed: 0" in capsys.readouterr().out
    assert sorted(p.name for p in (inputs / "out").iterdir()) == ["clip.json", "clip.mp4", "clip.trial"]


def test_a_failed_video_gives_exit_status_1_and_is_named(tmp_path, detections, capsys):
    inputs = tmp_path / "videos"
    inputs.mkdir()
    shutil.copy(VIDEO, inputs / "good.mp4")
    (inputs / "broken.mp4").write_bytes(b"garbage" * 64)
    argv = ["track", str(inputs), "--out", str(tmp_path / "out"), "--det-file", str(detections),
            "--det-image-key", "index", "--max-frames", "1", *MODEL_ARGS]
    assert main.main(argv) == 1
    printed = capsys.readouterr().out
    assert "done: 1" in printed and "failed: 1" in printed and "FAILED   broken" in printed


@pytest.mark.parametrize(
    "extra",
    [["--formats", "json,gif"], ["--tracker-option", "no_such_option=1"], ["--tracker-option", "max_age"]],
)
def test_bad_arguments_give_exit_status_2(tmp_path, detections, extra):
    argv = ["track", str(VIDEO), "--out", str(tmp_path), "--det-file", str(detections), *MODEL_ARGS, *extra]
    assert main.main(argv) == 2
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("extra, message", [
    (["--track-threshold", "3"], "--track-threshold must be in [0, 1], got 3.0"),
    (["--tracker-option", "max_age=-1"], "--tracker-option max_age must be >= 0, got -1"),
    (["--track-smoothing", "one_euro", "--tracker-option", "one_euro_beta=-1"], "one_euro_beta"),
    (["--pose-weights", "nowhere/x.pth"], "--pose-weights nowhere/x.pth: no such file"),
    (["--pose-config", "coco/w99_1x1"], "--pose-config: 'coco/w99_1x1' is neither a YAML file nor a config name"),
    (["--det-annotations", "nowhere.json"], "--det-annotations nowhere.json: no such file"),
])
def test_bad_options_are_refused_before_any_model_loads_naming_the_flag(tmp_path, detections, monkeypatch, caplog,
                                                                         extra, message):
    def no_models(*args, **kwargs):
        raise AssertionError("models built before the options were checked")

    monkeypatch.setattr("cli.track.build_track_models", no_models)
    argv = ["track", str(VIDEO), "--out", str(tmp_path / "out"), "--det-file", str(detections), *MODEL_ARGS, *extra]
    assert main.main(argv) == 2
    assert message in caplog.text and "TrackerOptions" not in caplog.text and "cannot set up" not in caplog.text
    assert not (tmp_path / "out").exists()


def test_offline_without_weights_lists_every_missing_file_at_once_and_leaves_no_folder(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HRTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out = tmp_path / "demo_out"
    assert main.main(["track", str(VIDEO), "--out", str(out), "--offline", "--device", "cpu", "--no-progress"]) == 2
    assert "2 weights file(s) this run needs are missing" in caplog.text
    assert "td-hm_hrnet-w32_8xb64-210e_coco-256x192" in caplog.text and "ssdlite320_mobilenet_v3_large" in caplog.text
    assert not out.exists()


def test_a_detection_file_for_other_images_fails_the_input_and_says_how_ids_map(tmp_path, caplog, capsys):
    boxes = tmp_path / "other_images.json"
    boxes.write_text(json.dumps([{"image_id": 100 + i, "category_id": 1, "bbox": [300, 150, 200, 450], "score": 0.9}
                                 for i in range(5)]))
    out = tmp_path / "out"
    argv = ["track", str(VIDEO), "--out", str(out), "--det-file", str(boxes), *MODEL_ARGS]
    assert main.main(argv) == 1
    printed = capsys.readouterr().out
    assert "FAILED   000001_mpiinew_test" in printed and "none of its 5 frames matched an image id" in printed
    assert "the file's ids: 100..104" in caplog.text and "frame index (--det-image-key index)" in caplog.text
    assert "--det-image-key path|index" in printed
    assert list(out.iterdir()) == []  # no empty result passing for a done one


def test_an_empty_detection_file_means_nobody_in_any_frame(tmp_path):
    boxes = tmp_path / "nobody.json"
    boxes.write_text("[]")  # COCO results list no image without detections: none at all is a valid file
    out = tmp_path / "out"
    assert main.main(["track", str(VIDEO), "--out", str(out), "--det-file", str(boxes), "--max-frames", "2",
                      *MODEL_ARGS]) == 0
    document = json.loads((out / "000001_mpiinew_test.json").read_text())
    assert [frame["people"] for frame in document["frames"]] == [[], []]


def test_an_output_folder_that_cannot_be_created_gives_exit_status_2(tmp_path, detections, caplog):
    (tmp_path / "taken").write_text("a file, not a folder")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        argv = ["track", str(VIDEO), "--out", str(out), "--det-file", str(detections), *MODEL_ARGS]
        assert main.main(argv) == 2
        assert f"output folder {out}" in caplog.text


def test_missing_input_gives_exit_status_2(tmp_path):
    assert main.main(["track", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"), *MODEL_ARGS]) == 2


def test_tracker_flags_map_to_pose_tracker_options():
    args = parse(["in.mp4", "--track-similarity", "iou", "--track-max-age", "7", "--track-flow",
                  "--tracker-option", "lost_scale_growth=0.25", "--tracker-option", "low_score_matching=false"])
    options = cli_options.tracker_options(args)
    assert options == {"similarity": "iou", "max_age": 7, "flow": True, "lost_scale_growth": 0.25,
                       "low_score_matching": False}
    from tracker import PoseTracker

    assert PoseTracker(**options).options.max_age == 7
    assert cli_options.tracker_options(parse(["in.mp4"])) == {}


@pytest.mark.parametrize("command, default", [("track", False), ("gui", False), ("pose", True), ("posetrack", True)])
def test_the_flip_test_is_off_by_default_for_live_commands_and_on_for_accuracy(command, default):
    # `track`/`gui` favour speed (flip doubles the network's cost); scoring keeps the paper's protocol.
    prefix = {"posetrack": ["posetrack", "run", "--data", "ROOT", "--out", "OUT"], "pose": ["pose", "IMG", "--boxes", "0,0,9,9"]}.get(command, [command, "IN"] if command == "track" else [command])
    parse = main.build_parser(command).parse_args
    assert parse(prefix).flip_test is default
    assert parse([*prefix, "--flip"]).flip_test is True
    assert parse([*prefix, "--no-flip"]).flip_test is False
    with pytest.raises(SystemExit):
        parse([*prefix, "--flip", "--no-flip"])
