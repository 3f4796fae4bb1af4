"""`main.py pose`: keypoints of given boxes as JSON, and the drawn image."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import main
import pose
from pose.estimator import PoseEstimator


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, hrnet_reference_dir):
    """Seeded weights for dev_tiny.yaml in the official key layout."""
    torch.manual_seed(123)
    model = pose.build_model(hrnet_reference_dir / "dev_tiny.yaml")
    path = tmp_path_factory.mktemp("weights") / "tiny_seed123.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture
def image_path(data_dir):
    return data_dir / "coco_mini" / "000000196141.jpg"


def run_pose(capsys, *args):
    status = main.main(["pose", *map(str, args)])
    return status, capsys.readouterr()


def test_prints_keypoints_and_writes_drawing(capsys, tmp_path, hrnet_reference_dir, tiny_checkpoint, image_path):
    out = tmp_path / "drawn" / "pose.jpg"
    boxes = [[120.0, 60.0, 260.0, 400.0], [300.5, 80.0, 420.0, 380.0]]
    status, captured = run_pose(
        capsys, image_path, "--boxes", *(",".join(map(str, b)) for b in boxes),
        "--pose-config", hrnet_reference_dir / "dev_tiny.yaml", "--pose-weights", tiny_checkpoint,
        "--device", "cpu", "--out", out,
    )
    assert status == 0
    document = json.loads(captured.out)
    assert document["keypoint_names"][0] == "nose" and len(document["keypoint_names"]) == 17
    assert [person["box"] for person in document["people"]] == boxes
    keypoints = np.array([person["keypoints"] for person in document["people"]])
    assert keypoints.shape == (2, 17, 3)

    estimator = PoseEstimator.from_config(hrnet_reference_dir / "dev_tiny.yaml", weights=tiny_checkpoint)
    expected, scores = estimator(cv2.imread(str(image_path)), np.array(boxes))
    np.testing.assert_allclose(keypoints[..., :2], expected, atol=1e-3)
    np.testing.assert_allclose(keypoints[..., 2], scores, atol=1e-6)

    drawn = cv2.imread(str(out))
    assert drawn is not None and drawn.shape == cv2.imread(str(image_path)).shape


def test_no_flip_changes_the_result(capsys, hrnet_reference_dir, tiny_checkpoint, image_path):
    common = [image_path, "--boxes", "120,60,260,400", "--pose-config", hrnet_reference_dir / "dev_tiny.yaml",
              "--pose-weights", tiny_checkpoint, "--device", "cpu"]
    _, flipped = run_pose(capsys, *common)
    _, plain = run_pose(capsys, *common, "--no-flip")
    a = np.array(json.loads(flipped.out)["people"][0]["keypoints"])
    b = np.array(json.loads(plain.out)["people"][0]["keypoints"])
    assert not np.allclose(a[:, 2], b[:, 2])


def test_unreadable_image_is_a_clear_error(capsys, caplog, tmp_path, hrnet_reference_dir, tiny_checkpoint):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("hello")
    status, captured = run_pose(capsys, bad, "--boxes", "0,0,10,10", "--pose-config",
                                hrnet_reference_dir / "dev_tiny.yaml", "--pose-weights", tiny_checkpoint)
    assert status == 2 and captured.out == ""
    assert "not_an_image.jpg" in caplog.text and "could not be read" in caplog.text
    status, _ = run_pose(capsys, tmp_path / "missing.jpg", "--boxes", "0,0,10,10")
    assert status == 2 and "does not exist" in caplog.text


def test_a_folder_given_as_the_image_is_a_clear_error(capsys, caplog, tmp_path):
    status, captured = run_pose(capsys, tmp_path, "--boxes", "0,0,10,10")
    assert status == 2 and captured.out == "" and "is a folder" in caplog.text


@pytest.mark.parametrize(("out", "message"), [("drawn.xyz", "no image writer"), ("taken/drawn.jpg", "could not write")])
def test_an_unwritable_drawing_is_a_clear_error(capsys, caplog, tmp_path, hrnet_reference_dir, tiny_checkpoint,
                                                image_path, out, message):
    (tmp_path / "taken").write_text("a file where the folder should be")
    status, _ = run_pose(capsys, image_path, "--boxes", "120,60,260,400", "--pose-config",
                         hrnet_reference_dir / "dev_tiny.yaml", "--pose-weights", tiny_checkpoint,
                         "--device", "cpu", "--no-flip", "--out", tmp_path / out)
    assert status == 2 and message in caplog.text and str(tmp_path / out) in caplog.text


@pytest.mark.parametrize("box", ["1,2,3", "a,b,c,d", "10,10,5,20", "0,0,nan,5"])
def test_malformed_boxes_are_rejected(capsys, image_path, box):
    with pytest.raises(SystemExit) as exit_info:
        main.main(["pose", str(image_path), "--boxes", box])
    assert exit_info.value.code == 2
    assert box in capsys.readouterr().err


def test_missing_weights_file_is_a_clear_error(capsys, caplog, hrnet_reference_dir, image_path, tmp_path):
    status, _ = run_pose(capsys, image_path, "--boxes", "0,0,10,10", "--pose-config",
                         hrnet_reference_dir / "dev_tiny.yaml", "--pose-weights", tmp_path / "nope.pth")
    assert status == 2 and "nope.pth" in caplog.text


def test_config_without_known_weights_asks_for_them(capsys, caplog, hrnet_reference_dir, image_path):
    status, _ = run_pose(capsys, image_path, "--boxes", "0,0,10,10", "--pose-config", hrnet_reference_dir / "dev_tiny.yaml")
    assert status == 2 and "--pose-weights" in caplog.text
