"""Heatmap codec against the official HRNet reference arrays, plus DARK round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose import codec as codec_module
from pose.codec import HeatmapCodec
from core.skeletons import COCO_FLIP_PAIRS, MPII_FLIP_PAIRS


@pytest.fixture(scope="module")
def ref(hrnet_reference_dir):
    return np.load(hrnet_reference_dir / "dev_postprocess.npz")


def make_codec(**options) -> HeatmapCodec:
    defaults = dict(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0, flip_pairs=COCO_FLIP_PAIRS)
    defaults.update(options)
    return HeatmapCodec(**defaults)


def test_get_max_preds_matches_official(ref):
    coords, maxvals = codec_module.get_max_preds(ref["hm"])
    np.testing.assert_array_equal(coords, ref["max_preds"])
    np.testing.assert_array_equal(maxvals, ref["max_maxvals"])


def test_max_preds_edge_cases(ref):
    coords, maxvals = codec_module.get_max_preds(ref["hm"][:1])
    # joint 7: all negative, joint 8: all zero -> forced to (0, 0), maxval kept
    np.testing.assert_array_equal(coords[0, 7], [0, 0])
    np.testing.assert_array_equal(coords[0, 8], [0, 0])
    assert maxvals[0, 7, 0] < 0 and maxvals[0, 8, 0] == 0
    # joint 9: three equal maxima, first in row-major order wins
    np.testing.assert_array_equal(coords[0, 9], [30, 20])


def test_decode_matches_official_final_preds(ref):
    keypoints, scores = make_codec().decode(ref["hm"], ref["center"], ref["scale"])
    assert keypoints.dtype == np.float32 and scores.shape == (4, 17)
    np.testing.assert_allclose(keypoints, ref["final_preds"], rtol=0, atol=1e-3)
    np.testing.assert_array_equal(scores, ref["final_maxvals"][..., 0])


def test_quarter_offset_border_rule(ref):
    coords, _ = make_codec().heatmap_coords(ref["hm"][:1])
    raw, _ = codec_module.get_max_preds(ref["hm"][:1])
    offset = coords[0] - raw[0]
    assert np.all(offset[[0, 1, 4, 5]] == 0)  # x=0, x=1, x=W-1, y=1: no offset on either axis
    assert np.all(np.abs(offset[[2, 3, 6]]) == 0.25)  # x=2, x=W-2, y=H-2: offset applied
    np.testing.assert_array_equal(offset[10], [0.0, 0.25])  # equal left/right neighbours


def test_decode_without_post_process_matches_official(ref):
    keypoints, _ = make_codec(post_process=False).decode(ref["hm"], ref["center"], ref["scale"])
    np.testing.assert_allclose(keypoints, ref["final_preds_nopp"], rtol=0, atol=1e-3)


def test_flip_back_matches_official(ref):
    np.testing.assert_array_equal(codec_module.flip_back(ref["flip_in"], COCO_FLIP_PAIRS), ref["flip_back_coco"])
    np.testing.assert_array_equal(make_codec().flip_back(ref["flip_in"]), ref["flip_back_coco_shifted"])
    np.testing.assert_array_equal(make_codec(shift_heatmap=False).flip_back(ref["flip_in"]), ref["flip_back_coco"])
    np.testing.assert_array_equal(codec_module.flip_back(ref["flip_in_mpii"], MPII_FLIP_PAIRS), ref["flip_back_mpii"])


def test_flip_back_does_not_modify_its_input(ref):
    before = ref["flip_in"].copy()
    make_codec().flip_back(before)
    np.testing.assert_array_equal(before, ref["flip_in"])


def test_merge_flip_matches_official_flip_test(hrnet_reference_dir):
    io = np.load(hrnet_reference_dir / "dev_tiny_io.npz")
    merged = make_codec(input_size=(128, 160), heatmap_size=(32, 40)).merge_flip(io["output"], io["output_flipped_input_raw"])
    np.testing.assert_array_equal(merged, io["output_flip_test"])


def test_encode_matches_official_generate_target(ref):
    codec = make_codec()
    for i in range(4):
        target, weight = codec.encode(ref["gt_joints"][i], ref["gt_joints_vis"][i])
        np.testing.assert_array_equal(target, ref["gt_target"][i])
        np.testing.assert_array_equal(weight, ref["gt_target_weight"][i])


def test_encode_384x288_sigma3_matches_official(ref):
    codec = make_codec(input_size=(288, 384), heatmap_size=(72, 96), sigma=3.0)
    target, weight = codec.encode(ref["gt384_joints"], ref["gt384_joints_vis"])
    np.testing.assert_array_equal(target, ref["gt384_target"])
    np.testing.assert_array_equal(weight, ref["gt384_target_weight"])


def test_encode_border_quirks():
    codec = make_codec()
    joints = np.array([[-30.0, 100.0], [-25.0, 100.0], [213.9, 100.0], [214.1, 100.0]])
    target, weight = codec.encode(joints, np.ones(4))
    # br exactly 0 at x=-30: weight 1 with an empty map (official quirk)
    assert weight[0, 0] == 1 and target[0].max() == 0
    # x=-25: centre truncated toward zero -> a partial Gaussian is written
    assert weight[1, 0] == 1 and target[1].max() > 0
    assert weight[2, 0] == 1 and weight[3, 0] == 0


def test_joints_mse_loss_matches_official(ref):
    output = torch.from_numpy(ref["loss_output"])
    target = torch.from_numpy(ref["loss_target"])
    weighted = codec_module.joints_mse_loss(output, target, torch.from_numpy(ref["loss_target_weight"]))
    unweighted = codec_module.joints_mse_loss(output, target)
    assert float(weighted) == pytest.approx(float(ref["loss_with_weight"]), rel=1e-6)
    assert float(unweighted) == pytest.approx(float(ref["loss_without_weight"]), rel=1e-6)


def test_joints_mse_loss_is_differentiable():
    output = torch.zeros(1, 2, 4, 4, requires_grad=True)
    loss = codec_module.joints_mse_loss(output, torch.ones(1, 2, 4, 4), torch.ones(1, 2, 1))
    loss.backward()
    assert output.grad is not None and float(output.grad.abs().sum()) > 0


@pytest.mark.parametrize("sigma, sizes", [(2.0, ((192, 256), (48, 64))), (3.0, ((288, 384), (72, 96)))])
def test_dark_round_trip_beats_quarter_offset(sigma, sizes):
    rng = np.random.RandomState(0)
    (in_w, in_h), (hm_w, hm_h) = sizes
    joints = np.stack([rng.uniform(0.2 * in_w, 0.8 * in_w, 17), rng.uniform(0.2 * in_h, 0.8 * in_h, 17)], axis=1)
    official = make_codec(input_size=(in_w, in_h), heatmap_size=(hm_w, hm_h), sigma=sigma)
    dark = make_codec(input_size=(in_w, in_h), heatmap_size=(hm_w, hm_h), sigma=sigma, decoding="dark")
    target, _ = official.encode(joints, np.ones(17), unbiased=True)
    truth = joints / 4.0  # heatmap px
    error_official = np.abs(official.heatmap_coords(target[None])[0][0] - truth).max()
    error_dark = np.abs(dark.heatmap_coords(target[None])[0][0] - truth).max()
    assert error_official > 0.1
    assert error_dark < 0.02
    assert error_dark < error_official / 5


def test_dark_is_more_accurate_on_noisy_reference_heatmaps(ref):
    truth = ref["hm_peak_xy_generated"][1:]
    official, _ = make_codec().heatmap_coords(ref["hm"][1:])
    dark, scores = make_codec(decoding="dark").heatmap_coords(ref["hm"][1:])
    assert np.abs(dark - truth).mean() < 0.5 * np.abs(official - truth).mean()
    # DARK keeps the raw heatmap maximum as the score
    np.testing.assert_array_equal(scores, ref["max_maxvals"][1:, :, 0])


def test_unknown_decoding_is_rejected():
    with pytest.raises(ValueError, match="decoding"):
        make_codec(decoding="soft-argmax")
