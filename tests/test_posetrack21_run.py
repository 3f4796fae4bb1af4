"""`posetrack run` on PoseTrack21's layout: GT boxes, a seeded tiny HRNet, the tracker, files its kit reads."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

import main
from cli.posetrack import run_layout
from evaluation.posetrack21 import evaluate_paths


def posetrack21_root(data_dir: Path, tmp_path: Path) -> Path:
    """One sequence of the PoseTrack18 sample in PoseTrack21's layout: posetrack_data/val, person_id added."""
    source = data_dir / "posetrack18_mini"
    root = tmp_path / "PoseTrack21"
    name = "012834_mpii_test"
    shutil.copytree(source / "images" / "val" / name, root / "images" / "val" / name)
    document = json.loads((source / "annotations" / "val" / f"{name}.json").read_text())
    for annotation in document["annotations"]:
        annotation["person_id"] = annotation["track_id"]
    (root / "posetrack_data" / "val").mkdir(parents=True)
    (root / "posetrack_data" / "val" / f"{name}.json").write_text(json.dumps(document))
    return root


def test_run_on_the_posetrack21_layout_writes_files_the_scorer_reads(data_dir, hrnet_reference_dir, tmp_path, caplog,
                                                                      capsys):
    root = posetrack21_root(data_dir, tmp_path)
    out = tmp_path / "pred"
    command = ["posetrack", "run", "--data", str(root), "--out", str(out), "--use-gt-boxes",
               "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
               "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
               "--device", "cpu", "--no-flip", "--no-progress"]
    with caplog.at_level(logging.INFO):
        assert main.main(command) == 0  # the layout is recognised without --benchmark
    assert "posetrack21: 1 sequences" in caplog.text
    gt = json.loads((root / "posetrack_data" / "val" / "012834_mpii_test.json").read_text())
    prediction = json.loads((out / "012834_mpii_test.json").read_text())
    # what the kit needs: the GT's images in GT order, a track id, 17 x 3 keypoints and 17 scores per person
    assert [image["id"] for image in prediction["images"]] == [image["id"] for image in gt["images"]]
    assert len(prediction["annotations"]) == 11  # one per GT box, all tracked
    for annotation in prediction["annotations"]:
        assert annotation["person_id"] == annotation["track_id"] >= 0
        assert len(annotation["keypoints"]) == 51 and len(annotation["scores"]) == 17
        assert np.array(annotation["keypoints"]).reshape(17, 3)[3:5].sum() == 0  # ears: the kit drops them
    metrics = evaluate_paths(root / "posetrack_data" / "val", out)
    assert metrics.num_sequences == 1 and metrics.hota is not None
    assert 0.0 <= metrics.hota["HOTA"][-1] <= 100.0  # random weights: the point is that the files score
    assert main.main(["posetrack", "eval", "--gt", str(root / "posetrack_data" / "val"), "--pred", str(out)]) == 0
    assert "HOTAeypoints->Summary" in capsys.readouterr().out


def test_layout_detection_and_the_hint_for_a_posetrack21_root(tmp_path, caplog):
    (tmp_path / "posetrack_data" / "val").mkdir(parents=True)
    assert run_layout(tmp_path, "val", "auto", None) == ("posetrack21", tmp_path / "posetrack_data" / "val")
    assert run_layout(tmp_path, "val", "posetrack18", None) == ("posetrack18", tmp_path / "annotations" / "val")
    with caplog.at_level(logging.ERROR):
        assert main.main(["posetrack", "run", "--data", str(tmp_path), "--out", str(tmp_path / "out"),
                          "--benchmark", "posetrack18"]) == 2
    assert "pass --benchmark posetrack21" in caplog.text
