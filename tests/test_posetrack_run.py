"""`posetrack run` end to end on the real PoseTrack18 sample: GT boxes, a seeded tiny HRNet, the tracker."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

import main
from evaluation.posetrack import evaluate_paths


def test_run_writes_resumes_and_skips_broken_videos(posetrack_root_with_a_broken_video, hrnet_reference_dir, tmp_path, caplog):
    root = posetrack_root_with_a_broken_video
    out = tmp_path / "pred"
    command = ["posetrack", "run", "--data", str(root), "--split", "val", "--out", str(out), "--use-gt-boxes",
               "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
               "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
               "--device", "cpu", "--no-flip", "--no-progress"]
    with caplog.at_level(logging.ERROR):
        assert main.main(command) == 1
    assert "009473_mpii_test" in caplog.text
    written = sorted(p.name for p in out.glob("*.json"))
    assert written == ["003418_mpii_test.json", "012834_mpii_test.json"]
    prediction = json.loads((out / "012834_mpii_test.json").read_text())
    assert len(prediction["annotations"]) == 11  # one per GT box, all tracked
    assert len({a["track_id"] for a in prediction["annotations"]}) == 11
    assert prediction["categories"][0]["keypoints"][1] == "head_bottom"
    assert all(np.array(a["keypoints"]).reshape(17, 3)[1:5].sum() == 0 for a in prediction["annotations"])

    stamp = (out / "012834_mpii_test.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        assert main.main(command) == 1  # still one broken video; the complete ones are skipped
    assert (out / "012834_mpii_test.json").stat().st_mtime_ns == stamp
    assert "2 already complete" in caplog.text

    (root / "annotations" / "val" / "009473_mpii_test.json").unlink()
    metrics = evaluate_paths(root / "annotations" / "val", out)
    assert metrics.num_videos == 2
    assert 0.0 <= metrics.ap[15] < 100.0  # random weights: the point is that the files evaluate


def test_an_unusable_output_folder_is_refused_before_any_video(data_dir, hrnet_reference_dir, tmp_path, caplog):
    root = tmp_path / "posetrack"
    shutil.copytree(data_dir / "posetrack18_mini" / "annotations" / "val", root / "annotations" / "val")
    gt_before = {p.name: p.read_bytes() for p in (root / "annotations" / "val").iterdir()}
    (tmp_path / "taken").write_text("a file, not a folder")
    common = ["posetrack", "run", "--data", str(root), "--use-gt-boxes",
              "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
              "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"), "--device", "cpu", "--no-progress"]
    with caplog.at_level(logging.ERROR):
        assert main.main([*common, "--out", str(tmp_path / "taken")]) == 2
        assert main.main([*common, "--out", str(root / "annotations" / "val")]) == 2
    assert "output folder" in caplog.text and "would overwrite the GT files" in caplog.text
    assert {p.name: p.read_bytes() for p in (root / "annotations" / "val").iterdir()} == gt_before


def test_keypoint_threshold_is_the_shared_flag_and_off_by_default(capsys):
    parser = main.build_parser("posetrack")
    base = ["posetrack", "run", "--data", "root", "--out", "pred"]
    assert parser.parse_args(base).keypoint_threshold is None  # write every keypoint, as poseval's AP wants
    assert parser.parse_args([*base, "--keypoint-threshold", "0.4"]).keypoint_threshold == 0.4
    for wrong in (["--keypoint-threshold", "1.5"], ["--joint-threshold", "0.4"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, *wrong])
    assert "--keypoint-threshold" in capsys.readouterr().err
