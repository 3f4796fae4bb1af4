"""`track --profile`: the per-stage table printed at the end and the same numbers in the JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import main
from tests.sample_data import SAMPLE_VIDEO as VIDEO, TINY_MODEL_ARGS as MODEL_ARGS

DATA = Path(__file__).parent / "data"


def test_track_profile_prints_stage_times_and_writes_them_into_the_json(tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": [300, 150, 200, 450], "score": 0.9}
                                 for i in range(5)]))
    out = tmp_path / "out"
    argv = ["track", str(VIDEO), "--out", str(out), "--det-file", str(boxes), "--det-image-key", "index",
            "--profile", *MODEL_ARGS]
    assert main.main(argv) == 0
    printed = capsys.readouterr().out
    assert "profile 000001_mpiinew_test: 5 frames (5 detected)" in printed
    for stage in ("capture", "detection", "pose", "crop", "network", "decode", "tracking", "sinks"):
        assert f"\n  {stage} " in printed or f"\n    {stage} " in printed, (stage, printed)
    profile = json.loads((out / "000001_mpiinew_test.json").read_text())["profile"]
    assert profile["frames"] == 5 and profile["fps"] > 0
    assert profile["stage_ms_per_frame"]["network"] > 0
    assert set(profile["wait_ms_per_frame"]) >= {"detection", "pose", "tracking", "sinks"}


def test_without_profile_the_json_has_no_profile_field(tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text("[]")
    out = tmp_path / "out"
    assert main.main(["track", str(VIDEO), "--out", str(out), "--det-file", str(boxes), "--det-image-key", "index",
                      "--max-frames", "2", *MODEL_ARGS]) == 0
    assert "profile" not in json.loads((out / "000001_mpiinew_test.json").read_text())


def test_coco_eval_profile_prints_the_stage_table(tmp_path, capsys):
    coco = DATA / "coco_mini"
    status = main.main(["coco", "eval", "--ann", str(coco / "test_coco.json"), "--images", str(coco), "--gt-boxes",
                        "--profile", *MODEL_ARGS[:-2], "--no-progress"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "profile: " in printed and "detected" in printed
    assert "\n    network " in printed and "\n  pose " in printed


def test_gui_profile_prints_the_frames_it_showed(tmp_path, capsys, qapp):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": i, "category_id": 1, "bbox": [300, 150, 200, 450], "score": 0.9}
                                 for i in range(5)]))
    status = main.main(["gui", "--source", str(VIDEO), "--det-file", str(boxes), "--det-image-key", "index",
                        "--output-dir", str(tmp_path / "out"), "--exit-after-frames", "2", "--profile",
                        *MODEL_ARGS[:-1]])
    assert status == 0
    printed = capsys.readouterr().out
    assert "profile (all sources shown): " in printed and "\n    network " in printed
