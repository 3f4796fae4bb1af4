"""Joint sets: the PoseTrack layout that PoseTrack-fine-tuned models predict."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from pose.estimator import PoseEstimator
from core.posetrack_format import POSETRACK18_KEYPOINT_NAMES, keypoint_layout_of
from core.skeletons import COCO_FLIP_PAIRS, keypoint_set


def test_posetrack_layout_matches_the_posetrack18_files():
    keypoints = keypoint_set("PoseTrack", 17)
    assert keypoints.keypoint_names == POSETRACK18_KEYPOINT_NAMES
    # head_bottom (1) and head_top (2) are not a left/right pair: the flip test must not swap them
    assert all(1 not in pair and 2 not in pair for pair in keypoints.flip_pairs)
    assert set(keypoints.flip_pairs) == set(COCO_FLIP_PAIRS) - {(1, 2)}
    np.testing.assert_allclose(keypoints.sigmas, keypoint_set("coco").sigmas)
    assert keypoint_layout_of(keypoints.keypoint_names) == "posetrack18"


def test_unknown_dataset_and_wrong_keypoint_count_are_errors():
    with pytest.raises(ValueError, match="expected 'coco', 'posetrack' or 'mpii'"):
        keypoint_set("h36m")
    with pytest.raises(ValueError, match="16 keypoints"):
        keypoint_set("mpii", 17)


def test_a_posetrack_experiment_gives_an_estimator_with_posetrack_keypoints(hrnet_reference_dir):
    config = yaml.safe_load((hrnet_reference_dir / "dev_tiny.yaml").read_text())
    config["DATASET"]["DATASET"] = "posetrack"
    estimator = PoseEstimator.from_config(config, weights=hrnet_reference_dir / "dev_tiny_state_dict.pt")
    assert estimator.keypoint_set.keypoint_names == POSETRACK18_KEYPOINT_NAMES
    assert estimator.codec.flip_pairs == keypoint_set("posetrack").flip_pairs
