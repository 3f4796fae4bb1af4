"""OKS, OKS-NMS and COCO rescoring against the official HRNet reference arrays."""

from __future__ import annotations

import numpy as np
import pytest

from pose import nms


@pytest.fixture(scope="module")
def ref(hrnet_reference_dir):
    return np.load(hrnet_reference_dir / "dev_postprocess.npz")


def test_oks_iou_matches_official(ref):
    kpts, areas = ref["nms_keypoints"], ref["nms_area"]
    np.testing.assert_allclose(nms.oks_iou(kpts[0], kpts, areas[0], areas), ref["oks_iou_det0_vs_all"], rtol=1e-12, atol=0)
    # flattened (3J,) layout gives the same
    flat = kpts.reshape(len(kpts), -1)
    np.testing.assert_array_equal(nms.oks_iou(flat[0], flat, areas[0], areas), nms.oks_iou(kpts[0], kpts, areas[0], areas))


@pytest.mark.parametrize("threshold, key", [(0.9, "oks_nms_keep_0.9"), (0.5, "oks_nms_keep_0.5")])
def test_oks_nms_keep_list_equals_official(ref, threshold, key):
    keep = nms.oks_nms(ref["nms_keypoints"], ref["nms_score"], ref["nms_area"], threshold)
    assert keep == ref[key].tolist()


def test_soft_oks_nms_keep_list_equals_official(ref):
    keep = nms.soft_oks_nms(ref["nms_keypoints"], ref["nms_score"], ref["nms_area"], 0.9)
    assert keep == ref["soft_oks_nms_keep_0.9"].tolist()
    assert len(keep) == nms.SOFT_NMS_MAX_DETECTIONS


def test_official_evaluation_postprocess(ref):
    boxes = ref["eval_all_boxes"]
    kept, scores = nms.evaluation_postprocess(ref["eval_keypoints"], boxes[:, 5], boxes[:, 4], ref["eval_image_id"])
    assert kept.tolist() == ref["eval_kept_index"].tolist()
    np.testing.assert_array_equal(ref["eval_image_id"][kept], ref["eval_kept_image_id"])
    np.testing.assert_array_equal(scores, ref["eval_kept_score"])


def test_rescore_rule(ref):
    boxes = ref["eval_all_boxes"]
    rescored = nms.rescore(ref["eval_keypoints"][..., 2], boxes[:, 5], keypoint_score_threshold=0.2)
    np.testing.assert_allclose(rescored, ref["eval_rescored_all_check"], rtol=1e-6)
    # detection 5 has all joint scores 0.1 < 0.2: its score is 0
    assert rescored[5] == 0.0
    hand = nms.rescore(np.array([[0.1, 0.5, 0.9], [0.2, 0.2, 0.2]], np.float32), [0.5, 1.0])
    np.testing.assert_allclose(hand, [0.5 * 0.7, 0.0], rtol=1e-6)


def test_crop_area_uses_enlarged_scale():
    np.testing.assert_allclose(nms.crop_area(np.array([[1.0, 2.0]], np.float32)), [200.0 * 400.0])


def test_empty_inputs():
    empty = np.zeros((0, 17, 3))
    assert nms.oks_nms(empty, np.zeros(0), np.zeros(0), 0.9) == []
    assert nms.soft_oks_nms(empty, np.zeros(0), np.zeros(0), 0.9) == []
    kept, scores = nms.evaluation_postprocess(empty, np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    assert kept.shape == (0,) and scores.shape == (0,)


def test_identical_poses_collapse_and_distant_ones_survive():
    rng = np.random.RandomState(1)
    person = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    far = person + np.array([500.0, 0.0, 0.0])
    kpts = np.stack([person, person, far])
    assert nms.oks_nms(kpts, [0.5, 0.9, 0.7], [1e4, 1e4, 1e4], 0.9) == [1, 2]


def test_keypoint_score_threshold_uses_second_set_only_like_official():
    a = np.zeros((17, 3))
    a[:, 2] = 0.0  # all of a's joints "invisible": the official quirk ignores them
    b = np.zeros((1, 17, 3))
    b[0, :, 0] = 1000.0  # far away on every joint
    b[0, :5, 2] = 1.0
    b[0, :5, 0] = 0.0  # the 5 visible joints of b coincide with a
    assert nms.oks_iou(a, b, 100.0, [100.0], keypoint_score_threshold=0.5)[0] == pytest.approx(1.0)
    assert nms.oks_iou(a, b, 100.0, [100.0])[0] == pytest.approx(5 / 17)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        nms.oks_nms(np.zeros((2, 17, 3)), [1.0], [1.0, 1.0], 0.9)
