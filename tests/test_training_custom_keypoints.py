"""Training and validating a COCO-format set with its own keypoints (5 here): `main.py train --layout`,
validated every epoch by `evaluation.coco` with the layout's OKS sigmas."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import yaml

import main as entry
from tests.training_runs import SMALL_CONFIG, read_log, torch_threads, train_command

# nose, left/right wrist, left/right ankle of the stick figures
KEYPOINT_IDS = (0, 9, 10, 15, 16)
NAMES = ["nose", "left_wrist", "right_wrist", "left_ankle", "right_ankle"]


def _five_keypoint_set(root, train_images=64, val_images=16):
    from evaluation.synthetic_keypoints import write_dataset

    write_dataset(root, "train", train_images, 1, keypoint_ids=KEYPOINT_IDS)
    write_dataset(root, "val", val_images, 2, keypoint_ids=KEYPOINT_IDS)
    return root


def _layout_yaml(path, sigmas):
    path.write_text(yaml.safe_dump({"keypoints": NAMES, "flip_pairs": [[1, 2], [3, 4]], "upper_body": [0, 1, 2],
                                    "sigmas": list(sigmas)}), encoding="utf-8")
    return path


def test_default_oks_sigmas_take_coco_values_by_name_and_coco_mean_otherwise(tmp_path):
    from core.skeletons import coco_sigmas
    from pose.training.layouts import layout_from_names, load_layout_yaml, oks_sigmas

    coco = coco_sigmas()
    derived = oks_sigmas(layout_from_names(["nose", "left_wrist", "tail_tip"]))
    np.testing.assert_array_equal(derived, [coco[0], coco[9], coco.mean()])
    given = oks_sigmas(load_layout_yaml(_layout_yaml(tmp_path / "layout.yaml", [0.1, 0.2, 0.3, 0.4, 0.5])))
    np.testing.assert_array_equal(given, [0.1, 0.2, 0.3, 0.4, 0.5])


def test_scoring_five_keypoints_needs_their_sigmas_and_scores_ground_truth_as_perfect(tmp_path):
    from evaluation.coco import load_annotation, score_results

    annotation = load_annotation(_five_keypoint_set(tmp_path, 1, 4) / "annotations" / "person_keypoints_val.json")
    perfect = [{"image_id": item["image_id"], "category_id": 1, "keypoints": item["keypoints"], "score": 1.0}
               for item in annotation["annotations"]]
    with pytest.raises(ValueError, match="5 keypoints need their own OKS sigmas"):
        score_results(perfect, annotation)
    with pytest.raises(ValueError, match=r"\(17,\) OKS sigmas for 5 keypoints"):
        score_results(perfect, annotation, sigmas=np.full(17, 0.05))
    assert score_results(perfect, annotation, sigmas=np.full(5, 0.05)).stats["AP"] == pytest.approx(1.0)


def test_validation_file_with_other_keypoints_is_a_clear_error_before_training(tmp_path, caplog):
    from evaluation.synthetic_keypoints import write_dataset

    data = _five_keypoint_set(tmp_path / "data", 8, 2)
    seventeen = write_dataset(tmp_path / "other", "val", 2, 3)
    layout = _layout_yaml(tmp_path / "layout.yaml", [0.05] * 5)
    with caplog.at_level(logging.ERROR):
        status = entry.main(train_command(SMALL_CONFIG, data, tmp_path / "run", 1,
                                          flags=("--layout", str(layout), "--val-ann", str(seventeen)),
                                          overrides=("MODEL.NUM_JOINTS", "5")))
    assert status == 2
    assert f"{seventeen}: validation needs a keypoint category with id 1 and 5 keypoints" in caplog.text
    assert not (tmp_path / "run" / "checkpoint.pth").exists()


@pytest.mark.slow
def test_five_keypoint_set_trains_and_validates_with_the_layout_sigmas(tmp_path):
    """2 epochs on 64 five-keypoint figures, validated every epoch; the logged AP is the one the
    validator gives the final weights with the YAML's sigmas, and wider sigmas score them higher."""
    import torch

    import pose
    from cli.train import make_coco_validator
    from pose.training.layouts import load_layout_yaml

    data = _five_keypoint_set(tmp_path / "data")
    layout_path = _layout_yaml(tmp_path / "layout.yaml", [0.08] * 5)
    out = tmp_path / "run"
    with torch_threads(1):
        assert entry.main(train_command(SMALL_CONFIG, data, out, 2, flags=("--layout", str(layout_path)),
                                        overrides=("MODEL.NUM_JOINTS", "5"))) == 0
        log = read_log(out / "log.csv")
        assert [row["val_metric"] for row in log] == ["AP", "AP"]
        logged = float(log[-1]["val_value"])
        assert 0.0 <= logged <= 1.0

        config = pose.load_config(SMALL_CONFIG, [f"DATASET.ROOT={data}", "MODEL.NUM_JOINTS=5"])
        model = pose.build_model(config)
        pose.load_weights(model, out / "final_state.pth")
        model.eval()
        assert model(torch.zeros(1, 3, 64, 48)).shape == (1, 5, 16, 12)
        val_ann, val_images = data / "annotations" / "person_keypoints_val.json", data / "images" / "val"

        def ap(sigma):
            layout = load_layout_yaml(_layout_yaml(tmp_path / f"layout_{sigma}.yaml", [sigma] * 5))
            return make_coco_validator(config, val_ann, val_images, "cpu", False, layout=layout)(model, 1)["AP"]

        narrow, wide = ap(0.08), ap(1.0)
    assert narrow == pytest.approx(logged, abs=1e-12)
    assert wide > narrow
