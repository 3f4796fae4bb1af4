"""Crop geometry and normalisation against the official HRNet reference arrays."""

from __future__ import annotations

import numpy as np
import pytest

from core.boxes import clean_ground_truth_box
from pose import transforms
from core.skeletons import COCO_FLIP_PAIRS


@pytest.fixture(scope="module")
def ref(hrnet_reference_dir):
    return np.load(hrnet_reference_dir / "dev_postprocess.npz")


def test_box_to_center_scale_matches_official(ref):
    # wider than 0.75, narrower, exactly 0.75, a 1x1 box, a zero-width box
    for box, center, scale in zip(ref["cs_box_xywh"], ref["cs_center"], ref["cs_scale"]):
        got_center, got_scale = transforms.box_to_center_scale(box, 0.75)
        assert got_center.dtype == np.float32 and got_scale.dtype == np.float32
        np.testing.assert_array_equal(got_center, center)
        np.testing.assert_array_equal(got_scale, scale)


def test_xyxy_boxes_use_corner_differences(ref):
    xywh = ref["cs_box_xywh"]
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    centers, scales = transforms.boxes_to_centers_scales(xyxy, 0.75, "xyxy")
    np.testing.assert_allclose(centers, ref["cs_center"], atol=1e-4)
    np.testing.assert_allclose(scales, ref["cs_scale"], rtol=1e-6)
    centers, scales = transforms.boxes_to_centers_scales(xywh, 0.75, "xywh")
    np.testing.assert_array_equal(centers, ref["cs_center"])
    np.testing.assert_array_equal(scales, ref["cs_scale"])


@pytest.mark.parametrize("boxes, fmt", [(np.zeros((3, 5)), "xyxy"), (np.zeros(4), "xyxy"), (np.zeros((1, 4)), "cxcywh")])
def test_bad_boxes_are_rejected(boxes, fmt):
    with pytest.raises(ValueError):
        transforms.boxes_to_centers_scales(boxes, 0.75, fmt)


def test_affine_transform_is_bit_exact(ref):
    for i in range(len(ref["aff_rot"])):
        args = (ref["aff_center"][i], ref["aff_scale"][i], ref["aff_rot"][i], ref["aff_output_size"][i])
        np.testing.assert_array_equal(transforms.get_affine_transform(*args), ref["aff_trans"][i])
        np.testing.assert_array_equal(transforms.get_affine_transform(*args, inv=True), ref["aff_trans_inv"][i])


def test_affine_transform_ignores_scale_height(ref):
    # Cases 5 and 6 differ only in scale[1].
    a = transforms.get_affine_transform(ref["aff_center"][5], ref["aff_scale"][5], ref["aff_rot"][5], ref["aff_output_size"][5])
    b = transforms.get_affine_transform(ref["aff_center"][6], ref["aff_scale"][6], ref["aff_rot"][6], ref["aff_output_size"][6])
    assert ref["aff_scale"][5][1] != ref["aff_scale"][6][1]
    np.testing.assert_array_equal(a, b)


def test_transform_preds_matches_official(ref):
    out = transforms.transform_preds(ref["tp_coords"], ref["tp_center"], ref["tp_scale"], ref["tp_output_size"])
    np.testing.assert_allclose(out, ref["tp_out"], rtol=0, atol=1e-9)


# The reference arrays were made with OpenCV 5.0.0 (pinned in pyproject.toml): OpenCV 5.1's warpAffine
# resamples differently and moves decoded keypoints by pixels, beyond this tolerance.
def test_crop_is_bit_exact_including_rotation(ref):
    for i in range(2):
        rgb_crop = transforms.crop(
            ref["crop_src_bgr"], ref["crop_center"][i], ref["crop_scale"][i], (192, 256), rot=ref["crop_rot"][i]
        )[..., ::-1]
        np.testing.assert_array_equal(rgb_crop, ref["crop_rgb_uint8"][i])


def test_normalize_matches_torchvision(ref):
    tensor = transforms.normalize(ref["crop_rgb_uint8"][0])
    assert tensor.shape == (3, 256, 192) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, ref["crop0_tensor"], rtol=0, atol=1e-6)
    batch = transforms.normalize(ref["crop_rgb_uint8"])
    assert batch.shape == (2, 3, 256, 192)
    np.testing.assert_array_equal(batch[0], tensor)


@pytest.mark.parametrize(
    "box, area, expected",
    [
        ([10.0, 20.0, 30.0, 40.0], 100.0, [10.0, 20.0, 29.0, 39.0]),  # one pixel narrower
        ([-5.0, -3.0, 30.0, 40.0], 100.0, [0.0, 0.0, 29.0, 39.0]),  # clipped at the top-left
        ([90.0, 50.0, 30.0, 80.0], 100.0, [90.0, 50.0, 9.0, 49.0]),  # clipped at W-1, H-1 (100x100 image)
        ([10.0, 20.0, 0.5, 0.5], 1.0, [10.0, 20.0, 0.0, 0.0]),  # tiny box kept as a point
        ([10.0, 20.0, 30.0, 40.0], 0.0, None),  # zero segmentation area
        ([120.0, 20.0, 30.0, 40.0], 100.0, None),  # starts right of the image
    ],
)
def test_clean_ground_truth_box(box, area, expected):
    cleaned = clean_ground_truth_box(box, 100, 100, area=area)
    if expected is None:
        assert cleaned is None
    else:
        np.testing.assert_array_equal(cleaned, expected)


def test_fliplr_joints_matches_official(ref):
    joints, vis = transforms.fliplr_joints(ref["fl_joints"], ref["fl_joints_vis"], int(ref["fl_width"]), COCO_FLIP_PAIRS)
    np.testing.assert_array_equal(joints, ref["fl_out_joints"])
    np.testing.assert_array_equal(vis, ref["fl_out_vis"])
